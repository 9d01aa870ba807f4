package webhook

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/taskfn/taskfn/shared/whsign"
)

// Sealer keeps signing secrets sealed at rest: AES-256-GCM under
// WEBHOOK_SECRET_KEY, a key that lives in the Kubernetes Secret and never
// in the database, with the webhook's id as additional data, so a sealed
// secret copied onto another row does not open. The database alone (a
// dump, a replica, a backup) cannot sign a delivery.
type Sealer struct{ aead cipher.AEAD }

// NewSealer returns a Sealer of key, 32 bytes in standard base64.
func NewSealer(key string) (*Sealer, error) {
	k, err := base64.StdEncoding.DecodeString(key)
	if err != nil || len(k) != 32 {
		return nil, fmt.Errorf("%w: WEBHOOK_SECRET_KEY must be 32 bytes in base64 (openssl rand -base64 32)", ErrConfig)
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, fmt.Errorf("webhook: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("webhook: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// Seal returns secret sealed for webhook id: nonce then ciphertext.
func (s *Sealer) Seal(id uuid.UUID, secret whsign.Secret) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("webhook: seal: %w", err)
	}
	return s.aead.Seal(nonce, nonce, []byte(secret.String()), id[:]), nil
}

// errUnseal: the key is not the one the secret was sealed with, or the
// row was tampered with.
var errUnseal = errors.New("webhook: the signing secret does not open with WEBHOOK_SECRET_KEY")

// Open returns the secret of webhook id sealed by Seal.
func (s *Sealer) Open(id uuid.UUID, sealed []byte) (whsign.Secret, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n {
		return whsign.Secret{}, errUnseal
	}
	plain, err := s.aead.Open(nil, sealed[:n], sealed[n:], id[:])
	if err != nil {
		return whsign.Secret{}, errUnseal
	}
	return whsign.ParseSecret(string(plain))
}
