package health

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/ambient-code/tokend/internal/exchange"
	"github.com/ambient-code/tokend/internal/version"
)

// metrics holds tokend's collectors on a private registry, so that nothing
// registered elsewhere in the process leaks into /metrics.
type metrics struct {
	reg         *prometheus.Registry
	exchanges   *prometheus.CounterVec
	duration    prometheus.Histogram
	expiry      prometheus.Gauge
	lastSuccess prometheus.Gauge
	failures    prometheus.Gauge
	writes      *prometheus.CounterVec
	skew        prometheus.Gauge
	withdrawn   prometheus.Gauge
	credExpiry  prometheus.Gauge
}

func newMetrics() *metrics {
	reg := prometheus.NewRegistry()
	f := promauto.With(reg)
	gauge := func(name, help string) prometheus.Gauge {
		return f.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	}
	m := &metrics{
		reg: reg,
		exchanges: f.NewCounterVec(prometheus.CounterOpts{
			Name: "tokend_exchanges_total",
			Help: "Token exchanges by result (success, or the failure's kind) and HTTP status code (0 when none).",
		}, []string{"result", "code"}),
		duration: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "tokend_exchange_duration_seconds",
			Help:    "Duration of token exchanges, successful or not.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		expiry: gauge("tokend_token_expiry_timestamp_seconds",
			"Expiry of the token on disk as a Unix timestamp; 0 when unknown."),
		lastSuccess: gauge("tokend_last_success_timestamp_seconds",
			"Time of the last successful exchange and write, as a Unix timestamp."),
		failures: gauge("tokend_consecutive_failures",
			"Failed attempts since the last success."),
		writes: f.NewCounterVec(prometheus.CounterOpts{
			Name: "tokend_file_writes_total",
			Help: "Token file writes by result: written, unchanged (not rewritten) or failed.",
		}, []string{"result"}),
		skew: gauge("tokend_issuer_clock_skew_seconds",
			"How far the issuer's clock (its Date header) was ahead of this node's at the last successful exchange; negative when behind, 0 within 2 s."),
		withdrawn: gauge("tokend_token_withdrawn",
			"1 while the token is withdrawn because the control plane definitively refused the credential (the token file holds a withdrawal record), else 0."),
		credExpiry: gauge("tokend_credential_expiry_timestamp_seconds",
			"Expiry of the bearer credential (the run capability), from its exp claim, as a Unix timestamp; 0 when unknown."),
	}
	info := version.Get()
	f.NewGauge(prometheus.GaugeOpts{
		Name:        "tokend_build_info",
		Help:        "Build information; always 1.",
		ConstLabels: prometheus.Labels{"version": info.Version, "commit": info.Commit, "goversion": info.GoVersion},
	}).Set(1)
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, r := range []string{"written", "unchanged", "failed"} {
		m.writes.WithLabelValues(r)
	}
	return m
}

// unixSeconds is t as a Unix timestamp; 0 for the zero time.
func unixSeconds(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixMilli()) / 1e3
}

// failureKind names a failed exchange for the result label.
func failureKind(err error) string {
	switch {
	case errors.Is(err, exchange.ErrCredentialExpired):
		return "credential_expired"
	case exchange.StatusCode(err) != 0:
		return "http_error"
	case errors.Is(err, exchange.ErrExpired):
		return "expired"
	case errors.Is(err, exchange.ErrInvalidResponse):
		return "invalid_response"
	}
	return "transport_error"
}
