// Command backend is the tiny web server the end-to-end test and the demo
// run behind HAProxy: it answers every request with its own name, so a
// client of the frontend can tell which backend served it.
//
//	backend -name web1 -listen 127.0.1.10:23000
//
// It prints "listening NAME ADDR" once the socket is bound, so a caller can
// wait for that line instead of sleeping, and exits on SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "backend: error: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("backend", flag.ContinueOnError)
	name := fs.String("name", "", "name to answer with")
	listen := fs.String("listen", "", "address:port to listen on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *name == "" || *listen == "" {
		return errors.New("usage: backend -name NAME -listen ADDR:PORT")
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	body := []byte(*name + "\n")
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			w.Write(body)
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	fmt.Printf("listening %s %s\n", *name, ln.Addr())
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
