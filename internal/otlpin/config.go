// Package otlpin is mcpwatch's OTLP receiver: OTLP/gRPC and OTLP/HTTP
// (traces and logs, protobuf and JSON, gzip), sender authentication (bearer
// tokens and mTLS mapped to tenants), request-size, per-tenant rate and
// in-flight-bytes limits, and the one place where errors become OTLP statuses.
//
// The OTLP metrics service is registered on gRPC and /v1/metrics on HTTP so
// that senders configured for all signals do not fail, but metrics are
// accepted and ignored: mcpwatch audits MCP messages, which are spans and logs.
package otlpin

import (
	"errors"
	"fmt"
	"net"
	"os"
	"time"
)

// Defaults for Config.
const (
	DefaultGRPCEndpoint     = ":4317"
	DefaultHTTPEndpoint     = ":4318"
	DefaultMaxRequestBytes  = 8 << 20   // 8 MiB, compressed and decompressed
	DefaultMaxInFlightBytes = 256 << 20 // 256 MiB
	DefaultMaxValueDepth    = 64
	DefaultBodyTimeout      = 30 * time.Second
	DefaultHeaderTimeout    = 10 * time.Second
	DefaultTenantRate       = 100000 // events/s per tenant
	DefaultRetryAfter       = time.Second
)

// Config configures the receiver.
type Config struct {
	// GRPC is the OTLP/gRPC listener. Default endpoint ":4317".
	GRPC ListenerConfig `yaml:"grpc"`
	// HTTP is the OTLP/HTTP listener. Default endpoint ":4318".
	HTTP ListenerConfig `yaml:"http"`
	// Auth maps senders to tenants.
	Auth AuthConfig `yaml:"auth"`
	// Limits bound what senders can make the collector do.
	Limits LimitsConfig `yaml:"limits"`
}

// ListenerConfig is one listener.
type ListenerConfig struct {
	// Endpoint is host:port to listen on; "" takes the default, "-"
	// disables the listener.
	Endpoint string `yaml:"endpoint"`
	// TLS serves TLS when CertFile and KeyFile are set.
	TLS ServerTLSConfig `yaml:"tls"`
}

// Disabled reports whether the listener is switched off.
func (l ListenerConfig) Disabled() bool { return l.Endpoint == "-" }

// ServerTLSConfig is TLS on a listener.
type ServerTLSConfig struct {
	// CertFile and KeyFile (PEM) enable TLS. Default: plaintext.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ClientCAFile (PEM) verifies client certificates when a client sends
	// one (mTLS); see AuthConfig.ClientCertTenants.
	ClientCAFile string `yaml:"client_ca_file"`
	// RequireClientCert rejects TLS handshakes without a valid client
	// certificate. Default false. Needs ClientCAFile.
	RequireClientCert bool `yaml:"require_client_cert"`
}

// Enabled reports whether TLS is on.
func (t ServerTLSConfig) Enabled() bool { return t.CertFile != "" }

// AuthConfig authenticates senders.
type AuthConfig struct {
	// Disabled accepts unauthenticated senders; their tenant comes from the
	// resource attribute mcpwatch.tenant, else "default". For local demos
	// only; logged as a WARN at start. Default false.
	Disabled bool `yaml:"disabled"`
	// Tokens are the accepted bearer tokens ("Authorization: Bearer <t>").
	Tokens []TokenConfig `yaml:"tokens"`
	// ClientCertTenants maps a verified client certificate's subject common
	// name, DNS SAN or URI SAN to a tenant (mTLS). Default none.
	ClientCertTenants map[string]string `yaml:"client_cert_tenants"`
}

// TokenConfig is one bearer token and the tenant it stands for. Exactly one
// of Token, TokenEnv, TokenFile gives the secret; only its SHA-256 is kept
// in memory.
type TokenConfig struct {
	Tenant string `yaml:"tenant"`
	// Token is the literal secret. Prefer TokenEnv or TokenFile.
	Token string `yaml:"token"`
	// TokenEnv names an environment variable holding the token.
	TokenEnv string `yaml:"token_env"`
	// TokenFile is a file holding the token (trailing newline trimmed).
	TokenFile string `yaml:"token_file"`
}

// LimitsConfig bounds requests.
type LimitsConfig struct {
	// MaxRequestBytes caps a request body, both as sent and after gzip
	// decompression (413 / RESOURCE_EXHAUSTED above it). Default 8 MiB.
	MaxRequestBytes int64 `yaml:"max_request_bytes"`
	// MaxInFlightBytes caps the memory of all requests being processed:
	// body bytes as they arrive, then an estimate of the decoded request
	// reserved before decoding. Above it new requests get 503 / UNAVAILABLE
	// (retryable) instead of waiting. Default 256 MiB.
	MaxInFlightBytes int64 `yaml:"max_in_flight_bytes"`
	// MaxTenantInFlightBytes caps what one tenant's requests may hold of
	// MaxInFlightBytes, so one tenant cannot lock the others out (429 /
	// RESOURCE_EXHAUSTED with a retry delay above it; 413 for a request
	// that could never fit). A gRPC stream holds what grpc may buffer for
	// it (grpcMessageBytes while its message is read). Not applied when
	// auth is disabled. Default MaxInFlightBytes / 4, at least room for
	// one gRPC message of MaxRequestBytes.
	MaxTenantInFlightBytes int64 `yaml:"max_tenant_in_flight_bytes"`
	// MaxValueDepth caps how deep attribute values and log bodies (AnyValue
	// arrays and maps) may nest; deeper requests get 400 / INVALID_ARGUMENT
	// before they are decoded. Default 64.
	MaxValueDepth int `yaml:"max_value_depth"`
	// BodyTimeout is the total time an OTLP/HTTP request may take to send
	// its body, however it trickles (408 after it). Default 30s.
	BodyTimeout time.Duration `yaml:"body_timeout"`
	// HeaderTimeout is the time an OTLP/HTTP request may take to send its
	// headers (the connection is closed after it). Default 10s.
	HeaderTimeout time.Duration `yaml:"header_timeout"`
	// TenantRate is the events/s (spans + log records) one tenant may send;
	// 429 / RESOURCE_EXHAUSTED with a retry delay above it. -1 = unlimited.
	// Default 100000.
	TenantRate float64 `yaml:"tenant_rate"`
	// TenantBurst is the burst above TenantRate. Default 2 × TenantRate.
	TenantBurst int `yaml:"tenant_burst"`
	// TenantRates overrides TenantRate per tenant. Default none.
	TenantRates map[string]float64 `yaml:"tenant_rates"`
	// RetryAfter is the delay suggested to senders with 503 / UNAVAILABLE.
	// Default 1s.
	RetryAfter time.Duration `yaml:"retry_after"`
}

// WithDefaults returns c with unset fields at their defaults.
func (c Config) WithDefaults() Config {
	if c.GRPC.Endpoint == "" {
		c.GRPC.Endpoint = DefaultGRPCEndpoint
	}
	if c.HTTP.Endpoint == "" {
		c.HTTP.Endpoint = DefaultHTTPEndpoint
	}
	l := &c.Limits
	if l.MaxRequestBytes == 0 {
		l.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if l.MaxInFlightBytes == 0 {
		l.MaxInFlightBytes = DefaultMaxInFlightBytes
	}
	if l.MaxTenantInFlightBytes == 0 {
		// A quarter, but room for one request of the maximum size (on
		// gRPC, the room grpc may take to read one: grpcMessageBytes).
		need := l.MaxRequestBytes
		if !c.GRPC.Disabled() {
			need = grpcMessageBytes(l.MaxRequestBytes)
		}
		l.MaxTenantInFlightBytes = min(max(l.MaxInFlightBytes/4, need), l.MaxInFlightBytes)
	}
	if l.MaxValueDepth == 0 {
		l.MaxValueDepth = DefaultMaxValueDepth
	}
	if l.BodyTimeout == 0 {
		l.BodyTimeout = DefaultBodyTimeout
	}
	if l.HeaderTimeout == 0 {
		l.HeaderTimeout = DefaultHeaderTimeout
	}
	if l.TenantRate == 0 {
		l.TenantRate = DefaultTenantRate
	}
	if l.TenantBurst == 0 && l.TenantRate > 0 {
		l.TenantBurst = int(2 * l.TenantRate)
	}
	if l.RetryAfter == 0 {
		l.RetryAfter = DefaultRetryAfter
	}
	return c
}

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var errs []error
	for name, l := range map[string]ListenerConfig{"grpc": c.GRPC, "http": c.HTTP} {
		if !l.Disabled() {
			if _, _, err := net.SplitHostPort(l.Endpoint); err != nil {
				errs = append(errs, fmt.Errorf("receiver.%s.endpoint: %q is not host:port", name, l.Endpoint))
			}
		}
		t := l.TLS
		if (t.CertFile == "") != (t.KeyFile == "") {
			errs = append(errs, fmt.Errorf("receiver.%s.tls: cert_file and key_file go together", name))
		}
		if t.ClientCAFile != "" && !t.Enabled() {
			errs = append(errs, fmt.Errorf("receiver.%s.tls.client_ca_file: needs cert_file and key_file", name))
		}
		if t.RequireClientCert && t.ClientCAFile == "" {
			errs = append(errs, fmt.Errorf("receiver.%s.tls.require_client_cert: needs client_ca_file", name))
		}
	}
	if c.GRPC.Disabled() && c.HTTP.Disabled() {
		errs = append(errs, errors.New("receiver: grpc and http are both disabled"))
	}
	a := c.Auth
	if !a.Disabled && len(a.Tokens) == 0 && len(a.ClientCertTenants) == 0 {
		errs = append(errs, errors.New("receiver.auth: no tokens and no client_cert_tenants; configure one or set auth.disabled: true (demo only)"))
	}
	if len(a.ClientCertTenants) > 0 && c.GRPC.TLS.ClientCAFile == "" && c.HTTP.TLS.ClientCAFile == "" {
		errs = append(errs, errors.New("receiver.auth.client_cert_tenants: needs tls.client_ca_file on a listener"))
	}
	for i, t := range a.Tokens {
		n := 0
		for _, s := range []string{t.Token, t.TokenEnv, t.TokenFile} {
			if s != "" {
				n++
			}
		}
		if n != 1 {
			errs = append(errs, fmt.Errorf("receiver.auth.tokens[%d]: set exactly one of token, token_env, token_file", i))
		}
		if t.Tenant == "" {
			errs = append(errs, fmt.Errorf("receiver.auth.tokens[%d].tenant: required", i))
		}
		if t.TokenEnv != "" && os.Getenv(t.TokenEnv) == "" {
			errs = append(errs, fmt.Errorf("receiver.auth.tokens[%d].token_env: environment variable %s is empty", i, t.TokenEnv))
		}
	}
	l := c.Limits
	if l.MaxRequestBytes < 0 {
		errs = append(errs, fmt.Errorf("receiver.limits.max_request_bytes: %d must be positive", l.MaxRequestBytes))
	}
	if l.MaxInFlightBytes < 0 {
		errs = append(errs, fmt.Errorf("receiver.limits.max_in_flight_bytes: %d must be positive", l.MaxInFlightBytes))
	}
	if l.MaxInFlightBytes > 0 && l.MaxRequestBytes > l.MaxInFlightBytes {
		errs = append(errs, fmt.Errorf("receiver.limits: max_request_bytes %d exceeds max_in_flight_bytes %d; no request of the maximum size could ever be processed", l.MaxRequestBytes, l.MaxInFlightBytes))
	}
	if l.MaxTenantInFlightBytes < 0 || l.MaxTenantInFlightBytes > l.MaxInFlightBytes {
		errs = append(errs, fmt.Errorf("receiver.limits.max_tenant_in_flight_bytes: %d must be positive and at most max_in_flight_bytes %d", l.MaxTenantInFlightBytes, l.MaxInFlightBytes))
	} else if l.MaxTenantInFlightBytes > 0 && l.MaxRequestBytes > l.MaxTenantInFlightBytes {
		errs = append(errs, fmt.Errorf("receiver.limits: max_request_bytes %d exceeds max_tenant_in_flight_bytes %d; no request of the maximum size could ever be processed", l.MaxRequestBytes, l.MaxTenantInFlightBytes))
	}
	if need := grpcMessageBytes(l.MaxRequestBytes); !c.GRPC.Disabled() && l.MaxRequestBytes > 0 && l.MaxRequestBytes <= l.MaxTenantInFlightBytes &&
		(need > l.MaxInFlightBytes || (!c.Auth.Disabled && need > l.MaxTenantInFlightBytes)) {
		errs = append(errs, fmt.Errorf("receiver.limits: reading a gRPC message of max_request_bytes %d takes up to %d bytes (2 × max_request_bytes + %d), more than max_in_flight_bytes %d or max_tenant_in_flight_bytes %d; no such request could ever be read",
			l.MaxRequestBytes, need, grpcPendingBytes, l.MaxInFlightBytes, l.MaxTenantInFlightBytes))
	}
	if l.MaxValueDepth < 0 {
		errs = append(errs, fmt.Errorf("receiver.limits.max_value_depth: %d must be positive", l.MaxValueDepth))
	}
	if l.BodyTimeout < 0 || l.HeaderTimeout < 0 {
		errs = append(errs, fmt.Errorf("receiver.limits: body_timeout %v and header_timeout %v must be positive", l.BodyTimeout, l.HeaderTimeout))
	}
	if l.TenantRate < 0 && l.TenantRate != -1 {
		errs = append(errs, fmt.Errorf("receiver.limits.tenant_rate: %v must be positive or -1 (unlimited)", l.TenantRate))
	}
	if l.TenantBurst < 0 {
		errs = append(errs, fmt.Errorf("receiver.limits.tenant_burst: %d must be positive", l.TenantBurst))
	}
	for t, r := range l.TenantRates {
		if r <= 0 && r != -1 {
			errs = append(errs, fmt.Errorf("receiver.limits.tenant_rates[%s]: %v must be positive or -1 (unlimited)", t, r))
		}
	}
	return errors.Join(errs...)
}
