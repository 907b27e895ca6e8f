package testkit

import (
	"io"
	"log"
)

// discardLog silences the servers' logs of connections that tests cut.
var discardLog = log.New(io.Discard, "", 0)
