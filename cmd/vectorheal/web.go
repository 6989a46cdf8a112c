package main

import (
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/mdlayher/vsock"
	"github.com/prometheus/exporter-toolkit/web"
	"go.yaml.in/yaml/v2"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/time/rate"
)

// The web configuration file (--web.config.file) is exporter-toolkit's format, validated by
// the toolkit's own web.Validate. vectorheal serves it itself rather than through the
// toolkit's ListenAndServe, whose basic-auth wrapper sits in front of every path: that would
// put the probes behind basic auth (a kubelet or load balancer sends none) and leave no room
// for the bearer tokens of the webhook and the API (one Authorization header carries one
// credential). So here, as with the toolkit, the file's TLS settings apply to every
// connection and its headers and rate limit to every request; its basic_auth_users guard
// /metrics and any other path vectorheal does not guard itself, and may read the API; the
// probes need nothing; the webhook, the API and /-/reload check vectorheal's own credentials.

// webServer serves one handler on the listeners of exporter-toolkit's flags.
type webServer struct {
	flags  web.FlagConfig
	logger *slog.Logger
	gate   *webGate // nil without a web configuration file
}

// newWebServer validates the web configuration file of flags, if any.
func newWebServer(flags web.FlagConfig, logger *slog.Logger) (*webServer, error) {
	s := &webServer{flags: flags, logger: logger}
	if file := *flags.WebConfigFile; file != "" {
		if err := web.Validate(file); err != nil {
			return nil, fmt.Errorf("--web.config.file %s: %w", file, err)
		}
		c, err := readWebConfig(file)
		if err != nil {
			return nil, err
		}
		s.gate = &webGate{file: file, logger: logger, cache: map[[32]byte]bool{}}
		if c.RateLimiterConfig.Interval != 0 {
			s.gate.limiter = rate.NewLimiter(rate.Every(c.RateLimiterConfig.Interval), c.RateLimiterConfig.Burst)
		}
	}
	return s, nil
}

// readWebConfig reads a web configuration file as exporter-toolkit does: strictly, with its
// defaults (TLS 1.2 to 1.3, HTTP/2 on), relative paths taken from the file's directory.
func readWebConfig(file string) (*web.Config, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--web.config.file: %w", err)
	}
	c := &web.Config{
		TLSConfig:  web.TLSConfig{MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS13},
		HTTPConfig: web.HTTPConfig{HTTP2: true},
	}
	if err := yaml.UnmarshalStrict(data, c); err != nil {
		return nil, fmt.Errorf("--web.config.file %s: %w", file, err)
	}
	c.TLSConfig.SetDirectory(filepath.Dir(file))
	return c, nil
}

// serve serves srv on every listener until one fails or srv is shut down.
func (s *webServer) serve(srv *http.Server) error {
	ls, err := s.listen()
	if err != nil {
		return err
	}
	if err := s.setTLS(srv); err != nil {
		for _, l := range ls {
			_ = l.Close()
		}
		return err
	}
	// Decided once: serving plain HTTP sets up HTTP/2, which gives srv a TLSConfig of its own.
	useTLS := srv.TLSConfig != nil
	errc := make(chan error, len(ls))
	for _, l := range ls {
		go func() {
			s.logger.Info("listening", "address", l.Addr().String(), "tls", useTLS)
			if useTLS {
				errc <- srv.ServeTLS(l, "", "")
				return
			}
			errc <- srv.Serve(l)
		}()
	}
	var first error
	for range ls {
		if err := <-errc; first == nil {
			first = err
			// One listener failing stops the others too: a server half listening is worse
			// than one that exits. After Shutdown, Close would cut the requests it waits for.
			if !errors.Is(err, http.ErrServerClosed) {
				_ = srv.Close()
			}
		}
	}
	return first
}

// listen opens the listeners exporter-toolkit's ListenAndServe would: systemd's sockets, or
// each --web.listen-address (vsock://:port on vsock, TCP otherwise).
func (s *webServer) listen() ([]net.Listener, error) {
	if s.flags.WebSystemdSocket != nil && *s.flags.WebSystemdSocket {
		ls, err := activation.Listeners()
		if err != nil {
			return nil, fmt.Errorf("systemd socket activation: %w", err)
		}
		if len(ls) == 0 {
			return nil, errors.New("systemd socket activation: no file descriptors passed")
		}
		return ls, nil
	}
	var ls []net.Listener
	for _, addr := range *s.flags.WebListenAddresses {
		l, err := listenOn(addr)
		if err != nil {
			for _, l := range ls {
				_ = l.Close()
			}
			return nil, fmt.Errorf("listen on %s: %w", addr, err)
		}
		ls = append(ls, l)
	}
	if len(ls) == 0 {
		return nil, errors.New("no --web.listen-address")
	}
	return ls, nil
}

func listenOn(addr string) (net.Listener, error) {
	if !strings.HasPrefix(addr, "vsock://") {
		return net.Listen("tcp", addr)
	}
	u, err := url.Parse(addr)
	if err != nil {
		return nil, err
	}
	_, p, err := net.SplitHostPort(u.Host)
	if err != nil {
		return nil, err
	}
	port, err := strconv.ParseUint(p, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("vsock port %q: %w", p, err)
	}
	return vsock.Listen(uint32(port), nil)
}

// setTLS sets srv's TLS configuration from the web configuration file when it enables TLS.
// Certificates are read again for every new connection, as exporter-toolkit does, so a
// renewed certificate needs no restart.
func (s *webServer) setTLS(srv *http.Server) error {
	if s.gate == nil {
		return nil
	}
	c, err := readWebConfig(s.gate.file)
	if err != nil {
		return err
	}
	if !c.TLSConfig.IsEnabled() {
		return nil
	}
	cfg, err := web.ConfigToTLSConfig(&c.TLSConfig)
	if err != nil {
		return fmt.Errorf("--web.config.file %s: %w", s.gate.file, err)
	}
	protos := []string{"http/1.1"}
	if c.HTTPConfig.HTTP2 {
		protos = []string{"h2", "http/1.1"}
	} else {
		srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	}
	cfg.NextProtos = protos
	file := s.gate.file
	cfg.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		c, err := readWebConfig(file)
		if err != nil {
			return nil, err
		}
		cfg, err := web.ConfigToTLSConfig(&c.TLSConfig)
		if err != nil {
			return nil, err
		}
		cfg.NextProtos = protos
		return cfg, nil
	}
	srv.TLSConfig = cfg
	return nil
}

// handler wraps next with the web configuration's headers, rate limit and basic auth; open
// says which paths its basic auth does not guard (the probes, and the paths that check
// vectorheal's own credentials).
func (s *webServer) handler(next http.Handler, open func(path string) bool) http.Handler {
	if s.gate == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := readWebConfig(s.gate.file)
		if err != nil {
			s.logger.Error("cannot read the web configuration file", "err", err)
			http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
			return
		}
		if s.gate.limiter != nil && !s.gate.limiter.Allow() {
			http.Error(w, http.StatusText(http.StatusTooManyRequests), http.StatusTooManyRequests)
			return
		}
		for k, v := range c.HTTPConfig.Header {
			w.Header().Set(k, v)
		}
		if len(c.Users) == 0 || open(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		if u, p, ok := r.BasicAuth(); ok && s.gate.check(c, u, p) {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("WWW-Authenticate", "Basic")
		http.Error(w, http.StatusText(http.StatusUnauthorized), http.StatusUnauthorized)
	})
}

// basicUser reports whether user and password are one of the web configuration's
// basic_auth_users; false when there is no web configuration or it has none. The API lets
// such users read.
func (s *webServer) basicUser(user, password string) bool {
	if s.gate == nil {
		return false
	}
	c, err := readWebConfig(s.gate.file)
	if err != nil {
		s.logger.Error("cannot read the web configuration file", "err", err)
		return false
	}
	return len(c.Users) > 0 && s.gate.check(c, user, password)
}

// webGate is the state of the web configuration's checks: the rate limiter and a cache of
// bcrypt outcomes, since a bcrypt comparison costs tens of milliseconds of CPU.
type webGate struct {
	file    string
	logger  *slog.Logger
	limiter *rate.Limiter

	mu    sync.Mutex
	cache map[[32]byte]bool // sha256 of user, hash and password → they match
	// bcryptMu runs one comparison at a time, so a flood of wrong passwords costs one core.
	bcryptMu sync.Mutex
}

// fakeHash is compared against when the user is unknown, so timing does not tell which
// users exist (exporter-toolkit's hash of "fakepassword").
const fakeHash = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi"

func (g *webGate) check(c *web.Config, user, password string) bool {
	hash, known := c.Users[user]
	h := string(hash)
	if !known {
		h = fakeHash
	}
	key := sha256.Sum256([]byte(user + "\x00" + h + "\x00" + password))
	g.mu.Lock()
	ok, cached := g.cache[key]
	g.mu.Unlock()
	if !cached {
		g.bcryptMu.Lock()
		ok = bcrypt.CompareHashAndPassword([]byte(h), []byte(password)) == nil
		g.bcryptMu.Unlock()
		g.mu.Lock()
		if len(g.cache) >= 100 {
			clear(g.cache) // rare: only this many distinct credentials were tried
		}
		g.cache[key] = ok
		g.mu.Unlock()
	}
	return ok && known
}
