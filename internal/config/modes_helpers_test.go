package config

import "github.com/ambient-code/tokend/internal/exchange"

// session returns the encrypted-session exchanger c builds, or nil in
// another mode.
func session(c *Config) *exchange.EncryptedSession {
	e, _ := c.Exchanger(nil).(*exchange.EncryptedSession)
	return e
}
