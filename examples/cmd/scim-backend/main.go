// Command scim-backend runs the in-memory example SCIM 2.0 service provider
// (package examples/backend) that caddy-scim-shadow proxies to in demos and
// integration tests.
//
//	go run ./examples/cmd/scim-backend -addr 127.0.0.1:9000 -token secret
//
// Flags default to the environment variables SCIM_BACKEND_ADDR,
// SCIM_BACKEND_TOKEN and SCIM_BACKEND_BASE_PATH.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/scim-shadow/caddy-scim-shadow/examples/backend"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "scim-backend:", err)
		os.Exit(1)
	}
}

func envOr(key, def string) string {
	if v, ok := os.LookupEnv(key); ok {
		return v
	}
	return def
}

func run(args []string) error {
	fs := flag.NewFlagSet("scim-backend", flag.ContinueOnError)
	addr := fs.String("addr", envOr("SCIM_BACKEND_ADDR", "127.0.0.1:9000"), "listen address (env SCIM_BACKEND_ADDR)")
	token := fs.String("token", envOr("SCIM_BACKEND_TOKEN", ""), "required bearer token; empty disables auth (env SCIM_BACKEND_TOKEN)")
	basePath := fs.String("base-path", envOr("SCIM_BACKEND_BASE_PATH", backend.DefaultBasePath), "URL path prefix of the SCIM endpoints (env SCIM_BACKEND_BASE_PATH)")
	if err := fs.Parse(args); err != nil {
		return err
	}

	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	h, err := backend.New(backend.Options{Token: *token, BasePath: *basePath, Logger: logger})
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           logRequests(logger, h),
		ReadHeaderTimeout: 10 * time.Second,
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	logger.Info("scim-backend listening",
		"url", "http://"+ln.Addr().String()+*basePath, "auth", *token != "")

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return err
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// logRequests logs method, path, status and duration of every request.
func logRequests(logger *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		logger.Info("request",
			"method", r.Method,
			"path", r.URL.RequestURI(),
			"status", rec.status,
			"duration", time.Since(start).Round(time.Microsecond))
	})
}
