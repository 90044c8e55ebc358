package haproxy

// The real components the live tests run: HAProxy ($HAPROXY_BIN, or haproxy
// from $PATH: Debian's 2.6, or 3.0) as a child process with its stats
// sockets in a short temporary directory, and HTTP backends on
// 127.0.21.0/24 (this package's loopback range).

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/serf-hb/serf-hb/internal/haproxytest"
)

// nextIP hands each HAProxy frontend its own address, so that parallel
// tests never share a port.
var nextIP atomic.Int32

func init() { nextIP.Store(10) }

// lab is one running HAProxy.
type lab struct {
	t      *testing.T
	dir    string
	cfg    string // path of the loaded file
	client Client
	user   Client // a stats socket at level user
	front  string // the frontend's HOST:PORT
	tcp    string // the TCP stats socket's HOST:PORT
}

// globalCfg is the head of every test config: %[1]s is the socket
// directory, %[2]s the frontend's address, %[3]s a TCP stats socket's.
const globalCfg = `global
    stats socket %[1]s/admin.sock mode 600 level admin
    stats socket %[1]s/user.sock mode 600 level user
    stats socket ipv4@%[3]s level admin
defaults
    mode http
    timeout connect 1s
    timeout client 10s
    timeout server 10s
frontend fe
    bind %[2]s
    default_backend b
`

// startHAProxy runs haproxy -db on globalCfg followed by body, and stops
// it (its whole process group) when the test ends.
func startHAProxy(t testing.TB, body string) *lab {
	t.Helper()
	bin := haproxytest.Require(t, "handler/haproxy")
	dir := haproxytest.ShortDir(t)
	ip := nextIP.Add(1)
	l := &lab{dir: dir, cfg: filepath.Join(dir, "haproxy.cfg"),
		front: fmt.Sprintf("127.0.21.%d:8080", ip), tcp: fmt.Sprintf("127.0.21.%d:9999", ip),
		client: Client{Addr: filepath.Join(dir, "admin.sock"), Timeout: 2 * time.Second},
		user:   Client{Addr: filepath.Join(dir, "user.sock"), Timeout: 2 * time.Second}}
	if err := os.WriteFile(l.cfg, []byte(l.config(body)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-db", "-f", l.cfg)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(3 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	})
	for deadline := time.Now().Add(5 * time.Second); ; {
		if _, err := l.client.Command(context.Background(), "show info"); err == nil {
			return l
		}
		select {
		case <-exited:
			t.Fatalf("haproxy exited at start:\n%s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxy's stats socket did not answer within 5s:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// config is the whole file for body.
func (l *lab) config(body string) string {
	return fmt.Sprintf(globalCfg, l.dir, l.front, l.tcp) + body
}

// backend is a real HTTP server on 127.0.21.0/24 answering its name. A
// request to /slow sends the first line at once, then waits until release
// is closed before finishing, so that a test holds a stream open on it.
type backend struct {
	name    string
	addr    string // HOST:PORT
	release chan struct{}
	once    sync.Once
	hits    atomic.Int32
}

// finish lets every /slow request of b end.
func (b *backend) finish() { b.once.Do(func() { close(b.release) }) }

var nextBackendIP atomic.Int32

func init() { nextBackendIP.Store(100) }

func startBackend(t testing.TB, name string) *backend {
	t.Helper()
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.21.%d:0", nextBackendIP.Add(1)%150+100))
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{name: name, addr: ln.Addr().String(), release: make(chan struct{})}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		if r.URL.Path != "/slow" {
			io.WriteString(w, name+"\n")
			return
		}
		io.WriteString(w, name+"\n")
		w.(http.Flusher).Flush()
		select {
		case <-b.release:
			io.WriteString(w, "done\n")
		case <-r.Context().Done():
		}
	})}
	go srv.Serve(ln)
	t.Cleanup(func() {
		b.finish()
		srv.Close()
	})
	return b
}

// get sends GET path through the frontend and returns the body's first
// line (the backend's name) or the status when it is not 200.
func (l *lab) get(c *http.Client, path string) (string, error) {
	resp, err := c.Get("http://" + l.front + path)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	first, _, _ := strings.Cut(string(body), "\n")
	return first, nil
}

// slow is a /slow request in progress through the frontend.
type slow struct {
	server string      // the backend's name, from the first line
	rest   chan string // the rest of the body, or the read error
	resp   *http.Response
}

// startSlow sends GET /slow on client c and waits for the first line.
func (l *lab) startSlow(t *testing.T, c *http.Client) *slow {
	t.Helper()
	resp, err := c.Get("http://" + l.front + "/slow")
	if err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(resp.Body)
	first, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("GET /slow: first line: %v", err)
	}
	s := &slow{server: strings.TrimSpace(first), rest: make(chan string, 1)}
	go func() {
		// Closed before the result is sent, so that a keep-alive
		// connection is back in the client's pool when wait returns.
		rest, err := io.ReadAll(r)
		resp.Body.Close()
		if err != nil {
			s.rest <- "error: " + err.Error()
			return
		}
		s.rest <- string(rest)
	}()
	return s
}

// wait returns the rest of the slow body, bounded in time.
func (s *slow) wait(t *testing.T) string {
	t.Helper()
	select {
	case rest := <-s.rest:
		return rest
	case <-time.After(5 * time.Second):
		t.Fatal("slow request still running after 5s")
		return ""
	}
}

// newHTTPClient is a client with keep-alive connections of its own.
func newHTTPClient(t *testing.T) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 4}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}
}

// writeCAAndCRL writes a self-signed CA certificate and an empty CRL it
// signed, for the ca-file and crl-file keywords, and returns their paths.
func writeCAAndCRL(t *testing.T) (ca, crl string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "serf-hb test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	crlDER, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(1), ThisUpdate: time.Now().Add(-time.Hour), NextUpdate: time.Now().Add(time.Hour),
	}, cert, key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ca, crl = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "crl.pem")
	for path, block := range map[string]*pem.Block{ca: {Type: "CERTIFICATE", Bytes: der}, crl: {Type: "X509 CRL", Bytes: crlDER}} {
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return ca, crl
}

// haproxyVersion is a HAProxy branch: major and minor.
type haproxyVersion struct{ major, minor int }

func (v haproxyVersion) before(w haproxyVersion) bool {
	return v.major < w.major || v.major == w.major && v.minor < w.minor
}

func (v haproxyVersion) String() string { return fmt.Sprintf("%d.%d", v.major, v.minor) }

// version is the running HAProxy's branch, from its own show info
// ("Version: 3.0.11-1+deb13u4").
func (l *lab) version(t testing.TB) haproxyVersion {
	t.Helper()
	info, err := l.client.Command(context.Background(), "show info")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(line, "Version: "); ok {
			var hv haproxyVersion
			if _, err := fmt.Sscanf(v, "%d.%d", &hv.major, &hv.minor); err == nil {
				return hv
			}
		}
	}
	t.Fatalf("show info names no version:\n%s", info)
	return haproxyVersion{}
}
