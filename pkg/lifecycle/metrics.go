package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// NewRegistry returns a Prometheus registry with the Go runtime and process collectors,
// for one daemon. Daemons register their own collectors on it; nothing is global.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// MetricsServer serves /metrics for one registry.
type MetricsServer struct {
	srv  *http.Server
	addr string
	// addrConfigured is metrics_listen as written, to notice changes on reload.
	addrConfigured string
	done           chan struct{}
}

// StartMetrics listens on addr and serves the registry at /metrics until Close.
func StartMetrics(addr string, reg *prometheus.Registry, log *zap.Logger) (*MetricsServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics_listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: zap.NewStdLog(log)}))
	m := &MetricsServer{
		srv:  &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second},
		addr: ln.Addr().String(),
		done: make(chan struct{}),
	}
	go func() {
		defer close(m.done)
		if err := m.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", zap.String("listen", m.addr), zap.Error(err))
		}
	}()
	log.Info("serving metrics", zap.String("listen", m.addr))
	return m, nil
}

// Addr is the address actually bound (useful with port 0).
func (m *MetricsServer) Addr() string { return m.addr }

// Close stops the server, waiting for in-flight scrapes until ctx ends.
func (m *MetricsServer) Close(ctx context.Context) error {
	err := m.srv.Shutdown(ctx)
	<-m.done
	return err
}
