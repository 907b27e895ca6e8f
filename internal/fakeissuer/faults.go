package fakeissuer

import (
	"fmt"
	"net/http"
)

// Status answers with the given status and a text/plain body. Extra header
// pairs (name, value, ...) are set first, e.g. "Retry-After", "3".
func Status(code int, header ...string) Fault {
	return func(w http.ResponseWriter, _ *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		plain(w, code, http.StatusText(code))
	}
}

// Body answers 200 with the given body and content type application/json.
func Body(body string) Fault {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprint(w, body)
	}
}

// Redirect answers 302 to location.
func Redirect(location string) Fault {
	return func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, location, http.StatusFound)
	}
}
