// Command wechatpay-sandbox runs a local simulator of WeChat Pay's brand API
// for crowd-package uploads, and generates the identities to use it.
//
//	wechatpay-sandbox gen-identity --out DIR [--brand-id ID] [--namespace NS] [--secret-name NAME]
//	wechatpay-sandbox serve --config sandbox.yaml [--addr 127.0.0.1:8443] [--tls-cert F --tls-key F] [--admin-addr ADDR]
//	wechatpay-sandbox --version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/crowdpack/crowdpack/internal/sandbox"
	"github.com/crowdpack/crowdpack/internal/version"
)

const usage = `usage:
  wechatpay-sandbox gen-identity --out DIR [--brand-id 1000000000001] [--namespace default] [--secret-name wechatpay-brand]
  wechatpay-sandbox serve --config sandbox.yaml [--addr 127.0.0.1:8443] [--tls-cert FILE --tls-key FILE] [--admin-addr ADDR]
  wechatpay-sandbox --version
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "gen-identity":
		err = genIdentity(os.Args[2:])
	case "serve":
		err = serve(os.Args[2:])
	case "--version", "-version", "version":
		fmt.Println(version.String("wechatpay-sandbox"))
	default:
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "wechatpay-sandbox:", err)
		os.Exit(1)
	}
}

func genIdentity(args []string) error {
	fs := flag.NewFlagSet("gen-identity", flag.ExitOnError)
	out := fs.String("out", "", "folder to write the identity into (required)")
	brandID := fs.String("brand-id", "1000000000001", "brand ID")
	namespace := fs.String("namespace", "default", "namespace of secret.yaml")
	secretName := fs.String("secret-name", "wechatpay-brand", "name of the Secret in secret.yaml")
	_ = fs.Parse(args)
	if *out == "" {
		return errors.New("gen-identity: --out is required")
	}
	id, err := sandbox.NewIdentity(*brandID)
	if err != nil {
		return err
	}
	if err := id.WriteFiles(*out, *namespace, *secretName); err != nil {
		return err
	}
	fmt.Printf("wrote identity of brand %s (public key ID %s) to %s\n", id.BrandID, id.PublicKeyID, *out)
	return nil
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	configPath := fs.String("config", "sandbox.yaml", "sandbox config (YAML or JSON)")
	addr := fs.String("addr", "127.0.0.1:8443", "API listen address")
	certFile := fs.String("tls-cert", "", "server certificate (PEM); with --tls-key serves HTTPS")
	keyFile := fs.String("tls-key", "", "server key (PEM)")
	adminAddr := fs.String("admin-addr", "", "separate plain-HTTP listener for the unauthenticated /sandbox/ admin endpoints; empty serves them on --addr")
	_ = fs.Parse(args)

	cfg, err := sandbox.LoadConfig(*configPath)
	if err != nil {
		return err
	}
	srv, err := sandbox.New(cfg)
	if err != nil {
		return err
	}
	opts, err := listenOptions(*addr, *certFile, *keyFile, *adminAddr == "")
	if err != nil {
		return err
	}
	api, err := srv.Listen(opts)
	if err != nil {
		return err
	}
	fmt.Printf("wechatpay-sandbox listening on %s\n", api.URL)
	var admin *http.Server
	if *adminAddr != "" {
		admin = serveAdmin(*adminAddr, srv.AdminHandler())
	}
	return shutdownOnSignal(api, admin)
}

// listenOptions serves the API on addr, over HTTPS when given a
// certificate and key, with the admin endpoints beside it when withAdmin.
func listenOptions(addr, certFile, keyFile string, withAdmin bool) (sandbox.ListenOptions, error) {
	opts := sandbox.ListenOptions{Addr: addr, WithAdmin: withAdmin}
	if (certFile == "") != (keyFile == "") {
		return opts, errors.New("serve: give both --tls-cert and --tls-key, or neither")
	}
	if certFile == "" {
		return opts, nil
	}
	var err error
	if opts.CertPEM, err = os.ReadFile(certFile); err != nil {
		return opts, err
	}
	if opts.KeyPEM, err = os.ReadFile(keyFile); err != nil {
		return opts, err
	}
	opts.TLS = true
	return opts, nil
}

// serveAdmin serves the admin endpoints on their own plain-HTTP listener.
func serveAdmin(addr string, h http.Handler) *http.Server {
	admin := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := admin.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(os.Stderr, "wechatpay-sandbox: admin:", err)
		}
	}()
	fmt.Printf("wechatpay-sandbox admin on http://%s/sandbox/\n", addr)
	return admin
}

// shutdownOnSignal waits for SIGINT or SIGTERM, then shuts the listeners
// down, giving calls in flight 10 seconds.
func shutdownOnSignal(api *sandbox.Instance, admin *http.Server) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if admin != nil {
		_ = admin.Shutdown(shutdownCtx)
	}
	return api.Shutdown(shutdownCtx)
}
