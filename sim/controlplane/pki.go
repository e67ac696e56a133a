package controlplane

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// pki holds the paths of the keys and credentials under STATE/pki. kube-apiserver
// self-signs its serving certificate into certDir; clients trust that certificate.
type pki struct {
	dir        string
	saKey      string // service-account signing key (RSA, PKCS#1 PEM)
	saPub      string // its public half (PKIX PEM), which verifies tokens
	tokens     string // --token-auth-file
	certDir    string // kube-apiserver --cert-dir
	servingCrt string // written by kube-apiserver at its first start
}

func newPKI(stateDir string) pki {
	dir := filepath.Join(stateDir, "pki")
	return pki{
		dir:        dir,
		saKey:      filepath.Join(dir, "sa.key"),
		saPub:      filepath.Join(dir, "sa.pub"),
		tokens:     filepath.Join(dir, "tokens.csv"),
		certDir:    filepath.Join(dir, "apiserver"),
		servingCrt: filepath.Join(dir, "apiserver", "apiserver.crt"),
	}
}

// ensure creates whatever is missing and returns the admin token. Existing keys and
// tokens are kept, so a restarted control plane accepts the tokens it issued before.
func (p pki) ensure() (string, error) {
	if err := os.MkdirAll(p.certDir, 0o700); err != nil {
		return "", err
	}
	if err := p.ensureServiceAccountKey(); err != nil {
		return "", err
	}
	return p.ensureAdminToken()
}

func (p pki) ensureServiceAccountKey() error {
	if fileExists(p.saKey) && fileExists(p.saPub) {
		return nil
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	priv := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	if err := writeFileAtomic(p.saKey, priv, 0o600); err != nil {
		return err
	}
	return writeFileAtomic(p.saPub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644)
}

// ensureAdminToken keeps a static token file with one user, admin, in system:masters.
func (p pki) ensureAdminToken() (string, error) {
	if b, err := os.ReadFile(p.tokens); err == nil {
		token, _, ok := strings.Cut(string(b), ",")
		if ok && token != "" {
			return token, nil
		}
		return "", fmt.Errorf("%s: no token on its first line", p.tokens)
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	token := hex.EncodeToString(raw)
	line := fmt.Sprintf("%s,admin,admin,\"system:masters\"\n", token)
	return token, writeFileAtomic(p.tokens, []byte(line), 0o600)
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
