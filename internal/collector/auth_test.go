package collector

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/mcpwatch/mcpwatch/internal/otlpin"
	"github.com/mcpwatch/mcpwatch/internal/testbed"
)

func TestAuthRejectsMissingAndWrongTokens(t *testing.T) {
	k := testbed.Kfake(t)
	tokenFile := filepath.Join(t.TempDir(), "beta.token")
	if err := os.WriteFile(tokenFile, []byte("beta-token-from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GAMMA_TOKEN", "gamma-token-from-env")
	c := startCollector(t, k.Brokers, func(cfg *Config) {
		cfg.Receiver.Auth.Tokens = append(cfg.Receiver.Auth.Tokens,
			otlpin.TokenConfig{Tenant: "beta", TokenFile: tokenFile},
			otlpin.TokenConfig{Tenant: "gamma", TokenEnv: "GAMMA_TOKEN"})
	})
	waitReady(t, c)
	body := protoBody(t, mcpTraces(1, 10))
	for name, hdr := range map[string]map[string]string{
		"no token":     {},
		"wrong token":  {"Authorization": "Bearer nope"},
		"basic auth":   {"Authorization": "Basic dXNlcjpwYXNz"},
		"empty bearer": {"Authorization": "Bearer "},
		"token prefix": {"Authorization": "Bearer " + testToken[:5]},
	} {
		r := post(t, c, "/v1/traces", "application/x-protobuf", body, hdr)
		if r.code != http.StatusUnauthorized || r.header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: HTTP %d, want 401 with WWW-Authenticate", name, r.code)
		}
	}
	for name, tok := range map[string]string{"no token": "", "wrong token": "nope"} {
		if _, err := grpcExport(t, c, mcpTraces(1, 10), tok); status.Code(err) != codes.Unauthenticated {
			t.Errorf("gRPC %s: %v, want UNAUTHENTICATED", name, err)
		}
	}
	for _, tok := range []string{"beta-token-from-file", "gamma-token-from-env"} {
		if r := post(t, c, "/v1/traces", "application/x-protobuf", body, map[string]string{"Authorization": "Bearer " + tok}); r.code != 200 {
			t.Errorf("token %s…: %d", tok[:5], r.code)
		}
	}
	tenants := map[string]int{}
	for _, e := range decodeAll(t, readTopic(t, k.Brokers, testTopic)) {
		tenants[e.Tenant]++
	}
	if tenants["beta"] != 1 || tenants["gamma"] != 1 || len(tenants) != 2 {
		t.Errorf("tenants in Kafka %v, want beta:1 gamma:1", tenants)
	}
}

func TestAuthDisabledTakesTenantFromResource(t *testing.T) {
	k := testbed.Kfake(t)
	c := startCollector(t, k.Brokers, func(cfg *Config) {
		cfg.Receiver.Auth = otlpin.AuthConfig{Disabled: true}
	})
	waitReady(t, c)
	td := mcpTraces(1, 10)
	td.ResourceSpans().At(0).Resource().Attributes().PutStr("mcpwatch.tenant", "from-resource")
	if r := post(t, c, "/v1/traces", "application/x-protobuf", protoBody(t, td), nil); r.code != 200 {
		t.Fatalf("%d %s", r.code, r.body)
	}
	if r := post(t, c, "/v1/traces", "application/x-protobuf", protoBody(t, mcpTraces(1, 10)), nil); r.code != 200 {
		t.Fatalf("%d %s", r.code, r.body)
	}
	tenants := map[string]int{}
	for _, e := range decodeAll(t, readTopic(t, k.Brokers, testTopic)) {
		tenants[e.Tenant]++
	}
	if tenants["from-resource"] != 1 || tenants["default"] != 1 {
		t.Errorf("tenants %v, want from-resource:1 default:1", tenants)
	}
}

func TestRateLimitPerTenant(t *testing.T) {
	k := testbed.Kfake(t)
	c := startCollector(t, k.Brokers, func(cfg *Config) {
		cfg.Receiver.Limits.TenantRate = 1 // events/s: the bucket refills far slower than the test runs
		cfg.Receiver.Limits.TenantBurst = 20
	})
	waitReady(t, c)
	if r := postTraces(t, c, mcpTraces(15, 10)); r.code != 200 {
		t.Fatalf("within burst: %d", r.code)
	}
	r := postTraces(t, c, mcpTraces(15, 10))
	if r.code != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
		t.Errorf("over the rate: %d Retry-After=%q, want 429 with Retry-After", r.code, r.header.Get("Retry-After"))
	}
	_, err := grpcExport(t, c, mcpTraces(15, 10), testToken)
	st, _ := status.FromError(err)
	if st.Code() != codes.ResourceExhausted || len(st.Details()) == 0 {
		t.Errorf("gRPC over the rate: %v (details %v), want RESOURCE_EXHAUSTED with RetryInfo", err, st.Details())
	}
}

// TestMTLSMapsClientCertToTenant serves TLS on both listeners and maps a
// client certificate's CN to a tenant, with no bearer token.
func TestMTLSMapsClientCertToTenant(t *testing.T) {
	k := testbed.Kfake(t)
	dir := t.TempDir()
	ca, caKey := newCA(t)
	writePEM(t, filepath.Join(dir, "ca.pem"), "CERTIFICATE", ca.Raw)
	srvCert, srvKey := issue(t, ca, caKey, "localhost", x509.ExtKeyUsageServerAuth)
	writePEM(t, filepath.Join(dir, "server.pem"), "CERTIFICATE", srvCert.Raw)
	writeKey(t, filepath.Join(dir, "server.key"), srvKey)
	cliCert, cliKey := issue(t, ca, caKey, "gateway-1", x509.ExtKeyUsageClientAuth)
	strangerCert, strangerKey := issue(t, ca, caKey, "stranger", x509.ExtKeyUsageClientAuth)

	tlsCfg := otlpin.ServerTLSConfig{CertFile: filepath.Join(dir, "server.pem"), KeyFile: filepath.Join(dir, "server.key"),
		ClientCAFile: filepath.Join(dir, "ca.pem")}
	c := startCollector(t, k.Brokers, func(cfg *Config) {
		cfg.Receiver.HTTP.TLS = tlsCfg
		cfg.Receiver.GRPC.TLS = tlsCfg
		cfg.Receiver.Auth.ClientCertTenants = map[string]string{"gateway-1": "beta"}
	})
	waitReady(t, c)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	clientTLS := func(cert *x509.Certificate, key *ecdsa.PrivateKey) *tls.Config {
		return &tls.Config{RootCAs: pool, ServerName: "localhost",
			Certificates: []tls.Certificate{{Certificate: [][]byte{cert.Raw}, PrivateKey: key}}}
	}
	postTLS := func(tc *tls.Config, hdr map[string]string) int {
		cl := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
		defer cl.CloseIdleConnections()
		req, _ := http.NewRequest(http.MethodPost, "https://"+c.HTTPAddr()+"/v1/traces", strings.NewReader(string(protoBody(t, mcpTraces(2, 10)))))
		req.Header.Set("Content-Type", "application/x-protobuf")
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatalf("https POST: %v", err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := postTLS(clientTLS(cliCert, cliKey), nil); code != 200 {
		t.Errorf("mapped client cert over HTTPS: %d", code)
	}
	if code := postTLS(clientTLS(strangerCert, strangerKey), nil); code != 401 {
		t.Errorf("unmapped client cert: %d, want 401", code)
	}
	if code := postTLS(&tls.Config{RootCAs: pool, ServerName: "localhost"}, authHeader()); code != 200 {
		t.Errorf("TLS without client cert, bearer token: %d", code)
	}
	cc, err := grpc.NewClient(c.GRPCAddr(), grpc.WithTransportCredentials(credentials.NewTLS(clientTLS(cliCert, cliKey))))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := ptraceotlp.NewGRPCClient(cc).Export(ctx, ptraceotlp.NewExportRequestFromTraces(mcpTraces(2, 10))); err != nil {
		t.Errorf("mapped client cert over gRPC TLS: %v", err)
	}
	tenants := map[string]int{}
	for _, e := range decodeAll(t, readTopic(t, k.Brokers, testTopic)) {
		tenants[e.Tenant]++
	}
	if tenants["beta"] != 4 || tenants[testTenant] != 2 {
		t.Errorf("tenants %v, want beta:4 (cert) acme:2 (token)", tenants)
	}
}

func newCA(t *testing.T) (*x509.Certificate, *ecdsa.PrivateKey) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mcpwatch test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert, key
}

var serial int64 = 10

func issue(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, cn string, usage x509.ExtKeyUsage) (*x509.Certificate, *ecdsa.PrivateKey) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial++
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
	if usage == x509.ExtKeyUsageServerAuth {
		tmpl.DNSNames = []string{"localhost"}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert, key
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func writeKey(t *testing.T, path string, key *ecdsa.PrivateKey) {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, path, "EC PRIVATE KEY", der)
}
