// Command kubeapi is a minimal Kubernetes API server for the end-to-end tests. It serves, from
// the YAML manifests in a directory, what Traefik v3.7.13's kubernetesCRD provider asks for: the
// list and watch requests of client-go v0.36 informers for the traefik.io/v1alpha1 kinds,
// Services, EndpointSlices, ConfigMaps, Secrets and Nodes. When a file in the directory changes,
// every watch gets the ADDED, MODIFIED and DELETED events of the change.
//
//	kubeapi -dir DIR [-addr 127.0.0.1:0]
//
// Once it listens it prints one line on stdout, "KUBEAPI_READY http://127.0.0.1:<port>"; its log
// (every request, every change) goes to stderr. It stops on SIGTERM or SIGINT.
//
// It is no API server: no writes, no authentication, no field selectors, and only the label
// selectors that use =, == and != (Traefik's Secret informer asks for owner!=helm).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	dir := flag.String("dir", "", "directory of the YAML manifests to serve")
	addr := flag.String("addr", "127.0.0.1:0", "address to listen on")
	poll := flag.Duration("poll", 100*time.Millisecond, "how often to look for changed files")
	flag.Parse()
	if *dir == "" {
		log.Fatal("kubeapi: -dir is required")
	}
	logger := log.New(os.Stderr, "[kubeapi] ", log.Lmicroseconds)
	s := newStore(logger.Printf)
	initial, err := readDir(*dir)
	if err != nil {
		logger.Fatalf("reading %s: %v", *dir, err)
	}
	s.replace(initial)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go watchDir(ctx, *dir, *poll, s, logger)

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		logger.Fatal(err)
	}
	srv := &http.Server{Handler: &api{store: s, log: logger}, ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
	fmt.Printf("KUBEAPI_READY http://%s\n", ln.Addr())
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		logger.Fatal(err)
	}
}

// watchDir re-reads dir every poll and, when the manifests changed, hands them to the store. A
// directory that does not parse (a file half written) keeps the last good state.
func watchDir(ctx context.Context, dir string, poll time.Duration, s *store, logger *log.Logger) {
	t := time.NewTicker(poll)
	defer t.Stop()
	lastErr := ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		next, err := readDir(dir)
		if err != nil {
			if err.Error() != lastErr {
				logger.Printf("keeping the last good state: %v", err)
				lastErr = err.Error()
			}
			continue
		}
		lastErr = ""
		s.replace(next)
	}
}
