package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
)

// The probes tell the kubelet two things. Liveness (healthz.Ping: the
// process serves) restarts the manager; readiness (the API server answers)
// takes it out of service. A manager cut off from the API server can do no
// work, but a restart cannot bring the API server back: it goes unready and
// waits, rather than crash-looping (make e2e-node checks it on a real node).

// apiServerTimeout bounds one readiness check: the kubelet's probe gives up
// after one second by default, and then counts a failure anyway.
const apiServerTimeout = 3 * time.Second

// apiServerAnswers is the readiness check: the API server's /version answers.
func apiServerAnswers(cfg *rest.Config) (healthz.Checker, error) {
	c := rest.CopyConfig(cfg)
	c.Timeout = apiServerTimeout
	dc, err := discovery.NewDiscoveryClientForConfig(c)
	if err != nil {
		return nil, fmt.Errorf("API server readiness check: %w", err)
	}
	return func(*http.Request) error {
		if _, err := dc.ServerVersion(); err != nil {
			return fmt.Errorf("the API server does not answer: %w", err)
		}
		return nil
	}, nil
}

// waitForAPIServer returns once the API server answers (setting up the
// controllers needs it), serving the probes on probeAddr meanwhile: alive,
// not ready. An empty or "0" probeAddr serves none.
func waitForAPIServer(ctx context.Context, check healthz.Checker, probeAddr string) error {
	if check(nil) == nil {
		return nil
	}
	if probeAddr != "" && probeAddr != "0" {
		stop, err := serveStartupProbes(probeAddr, check)
		if err != nil {
			return err
		}
		defer stop()
	}
	log := ctrl.Log.WithName("setup")
	for delay := time.Second; ; delay = min(2*delay, 15*time.Second) {
		err := check(nil)
		if err == nil {
			log.Info("the API server answers")
			return nil
		}
		log.Info("waiting for the API server", "error", err.Error(), "retryIn", delay.String())
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
	}
}

// serveStartupProbes answers /healthz with ok and /readyz with the check's
// verdict until stop, which frees the address for the manager's own probes.
func serveStartupProbes(addr string, check healthz.Checker) (stop func(), err error) {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := check(r); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "ok")
	})
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	errs := make(chan error, 1)
	go func() { errs <- srv.ListenAndServe() }()
	select {
	case err := <-errs:
		return nil, fmt.Errorf("serve the probes on %s: %w", addr, err)
	case <-time.After(100 * time.Millisecond):
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			ctrl.Log.Error(err, "stop the start-up probes")
		}
	}, nil
}
