package proxy

import (
	"cmp"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes, the values of tokend_proxy_requests_total's outcome label.
const (
	OutcomeForwarded       = "forwarded"        // the upstream answered; code_class is its status class
	OutcomeRefused         = "refused"          // an absolute-form, asterisk-form or CONNECT target, or a dot segment: 400 or 405
	OutcomeOverloaded      = "overloaded"       // MaxConcurrent requests were in flight: 503
	OutcomeNoToken         = "no_token"         // no first token within FirstTokenWait: 503
	OutcomeExpired         = "expired"          // the held token had expired and no fresh one came: 503
	OutcomeWithdrawn       = "withdrawn"        // the token was withdrawn (a definitive refusal): 403, or cut in flight
	OutcomeUpstreamRefused = "upstream_refused" // the upstream answered 401 and no retry could fix it: 502 or 503
	OutcomeUpstreamError   = "upstream_error"   // the upstream could not be reached or did not answer: 502 or 504
	OutcomeCanceled        = "canceled"         // the client went away before the upstream answered
)

// metrics holds the proxy's collectors.
type metrics struct {
	requests *prometheus.CounterVec
	duration prometheus.Histogram
	retries  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokend_proxy_requests_total",
			Help: "Requests to the credential proxy by outcome and the upstream's status class (1xx-5xx; none when the upstream did not answer).",
		}, []string{"outcome", "code_class"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tokend_proxy_request_duration_seconds",
			Help:    "Time from a request's arrival at the credential proxy until its response header was written to the client.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tokend_proxy_retries_total",
			Help: "Requests sent again with a fresh token after the upstream answered 401.",
		}),
	}
	reg = cmp.Or(reg, prometheus.Registerer(prometheus.NewRegistry())) // nil: a registry nobody gathers
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.retries} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("proxy: registering metrics: %w: give each Proxy its own registry", err)
		}
	}
	return m, nil
}
