package sandbox

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"sigs.k8s.io/yaml"
)

// Defaults of a sandbox.
const (
	DefaultPartSize    = 5 << 20
	MaxPartSize        = 20 << 20 // the API's limit for one part
	DefaultClockWindow = 5 * time.Minute
)

// Config is a sandbox's setup, loadable from YAML or JSON with LoadConfig.
type Config struct {
	// PublicKeyID is the sandbox's WeChat Pay public key ID, PUB_KEY_ID_ + digits.
	PublicKeyID string `json:"publicKeyID"`
	// PrivateKeyPEM (or PrivateKeyFile) is the sandbox's WeChat Pay private
	// key, used to sign answers; clients verify with its public half.
	PrivateKeyPEM  string `json:"privateKeyPEM,omitempty"`
	PrivateKeyFile string `json:"privateKeyFile,omitempty"`
	// Brands are the brands allowed to call.
	Brands []BrandConfig `json:"brands"`
	// PartSize is the file_part_size handed out; default 5 MiB, at most 20 MiB.
	PartSize int64 `json:"partSize,omitempty"`
	// ClockWindowSeconds is how far a request timestamp may be from now; default 300.
	ClockWindowSeconds int `json:"clockWindowSeconds,omitempty"`
	// Seed seeds the fault PRNG so runs repeat.
	Seed uint64 `json:"seed,omitempty"`
	// Faults are injected per endpoint; see Faults.
	Faults map[Endpoint]Faults `json:"faults,omitempty"`
	// Idempotent makes repeated merges or expands succeed instead of being
	// refused; the default refuses them, as strict as the documentation allows.
	Idempotent Idempotency `json:"idempotent,omitempty"`
	// Now is the sandbox clock; default time.Now.
	Now func() time.Time `json:"-"`
}

// Idempotency says which repeats the sandbox answers 200 (marking the record
// Duplicate) instead of refusing with 400 INVALID_REQUEST. WeChat Pay does not
// document merge or expand as idempotent, so both default to refusing.
type Idempotency struct {
	// Merge answers a repeated merge of a merged upload with the first answer.
	Merge bool `json:"merge,omitempty"`
	// Expand answers a repeated expand of a package with the same upload_id 200.
	Expand bool `json:"expand,omitempty"`
}

// BrandConfig is one brand allowed to call the sandbox.
type BrandConfig struct {
	BrandID             string `json:"brandID"`
	CertificateSerialNo string `json:"certificateSerialNo"`
	// PublicKeyPEM (or PublicKeyFile) is the brand API certificate's public key (SPKI PEM).
	PublicKeyPEM  string `json:"publicKeyPEM,omitempty"`
	PublicKeyFile string `json:"publicKeyFile,omitempty"`
}

// LoadConfig reads a YAML or JSON config; key files are relative to its folder.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("load sandbox config: %w", err)
	}
	var cfg Config
	if err := yaml.UnmarshalStrict(data, &cfg); err != nil {
		return Config{}, fmt.Errorf("load sandbox config %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	if err := inlineFile(dir, cfg.PrivateKeyFile, &cfg.PrivateKeyPEM); err != nil {
		return Config{}, err
	}
	for i := range cfg.Brands {
		if err := inlineFile(dir, cfg.Brands[i].PublicKeyFile, &cfg.Brands[i].PublicKeyPEM); err != nil {
			return Config{}, err
		}
	}
	return cfg, nil
}

// inlineFile reads file (relative to dir) into *pemText unless pemText is already set.
func inlineFile(dir, file string, pemText *string) error {
	if file == "" || *pemText != "" {
		return nil
	}
	if !filepath.IsAbs(file) {
		file = filepath.Join(dir, file)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("load sandbox config: %w", err)
	}
	*pemText = string(data)
	return nil
}
