package refresher

import "github.com/ambient-code/tokend/internal/exchange"

// Adopt hands Run a token obtained before it started, such as the one
// `tokend init` wrote (rule 7): Run's first attempt stores it through the
// Sink, which writes nothing when the files hold it already, instead of
// exchanging, and the next exchange is planned from tok as from a token
// just obtained. A tok that expires before that attempt is dropped and
// exchanged for. Call Adopt before Run, at most once.
func (r *Refresher) Adopt(tok exchange.Token) { r.unstored = &tok }
