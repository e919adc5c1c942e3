package otlpin

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
)

// authenticator maps credentials to tenants. It keeps only SHA-256 hashes
// of the tokens and compares them in constant time.
type authenticator struct {
	disabled bool
	tokens   []tokenHash
	certs    map[string]string
}

type tokenHash struct {
	sum    [sha256.Size]byte
	tenant string
}

func newAuthenticator(c AuthConfig) (*authenticator, error) {
	a := &authenticator{disabled: c.Disabled, certs: c.ClientCertTenants}
	for i, t := range c.Tokens {
		secret := t.Token
		switch {
		case t.TokenEnv != "":
			secret = os.Getenv(t.TokenEnv)
		case t.TokenFile != "":
			b, err := os.ReadFile(t.TokenFile)
			if err != nil {
				return nil, fmt.Errorf("cannot read receiver.auth.tokens[%d].token_file: %w", i, err)
			}
			secret = strings.TrimRight(string(b), "\r\n")
		}
		if secret == "" {
			return nil, fmt.Errorf("cannot load receiver.auth.tokens[%d]: the token is empty", i)
		}
		a.tokens = append(a.tokens, tokenHash{sum: sha256.Sum256([]byte(secret)), tenant: t.Tenant})
	}
	return a, nil
}

// authenticate returns the sender's tenant from the Authorization header
// value and the verified client certificate chain. "" with a nil error
// means auth is disabled and the mapping decides the tenant.
func (a *authenticator) authenticate(authorization string, verified [][]*x509.Certificate) (string, error) {
	if authorization != "" {
		scheme, tok, ok := strings.Cut(authorization, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
			return "", NewError(Unauthenticated, "unauthenticated", 0, nil, "authorization must be \"Bearer <token>\"")
		}
		sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
		tenant := ""
		for _, t := range a.tokens { // no early exit: constant time in the position
			if subtle.ConstantTimeCompare(sum[:], t.sum[:]) == 1 {
				tenant = t.tenant
			}
		}
		if tenant == "" {
			return "", NewError(Unauthenticated, "unauthenticated", 0, nil, "unknown bearer token")
		}
		return tenant, nil
	}
	if len(verified) > 0 && len(verified[0]) > 0 && len(a.certs) > 0 {
		leaf := verified[0][0]
		names := append([]string{leaf.Subject.CommonName}, leaf.DNSNames...)
		for _, u := range leaf.URIs {
			names = append(names, u.String())
		}
		for _, n := range names {
			if t, ok := a.certs[n]; ok && n != "" {
				return t, nil
			}
		}
		if !a.disabled {
			return "", NewError(Unauthenticated, "unauthenticated", 0, nil, "client certificate %q maps to no tenant", leaf.Subject.CommonName)
		}
	}
	if a.disabled {
		return "", nil
	}
	return "", NewError(Unauthenticated, "unauthenticated", 0, nil, "missing credentials: send \"Authorization: Bearer <token>\" or a client certificate")
}
