package health

import "github.com/prometheus/client_golang/prometheus"

// Registerer returns the registry that /metrics serves, for components
// that export their own metrics (notifiers, the refresh socket). It is safe
// for concurrent use.
func (m *Monitor) Registerer() prometheus.Registerer { return m.metrics.reg }
