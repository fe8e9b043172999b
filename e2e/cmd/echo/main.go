// Command echo serves the echo backend of the end-to-end tests on its own, for the demo:
// every request gets 200 and a JSON description of the headers, URL and query it arrived with.
//
//	go run ./cmd/echo -addr 127.0.0.1:9091
package main

import (
	"errors"
	"flag"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tokengate/oauthintrospection/e2e/echo"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9091", "address to listen on")
	flag.Parse()

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("echo: %v", err)
	}
	srv := &http.Server{Handler: echo.Handler(), ReadHeaderTimeout: 10 * time.Second}
	log.Printf("echo: listening on http://%s", ln.Addr())

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-stop
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatalf("echo: %v", err)
	}
}
