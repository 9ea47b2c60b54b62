package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/imgpipe/imgpipe/internal/fail"
)

// KubeConfig is the part of a kubeconfig file this package uses: the current
// context's server and credentials, resolved (files read, base64 decoded).
type KubeConfig struct {
	// Context is the kubeconfig context used.
	Context string
	// Server is the API server URL (https://host:port).
	Server string
	// TLS carries the CA and the client certificate, when the kubeconfig has them.
	TLS *tls.Config
	// Token is the bearer token, when the kubeconfig has one.
	Token string
}

type kubeconfigFile struct {
	CurrentContext string `yaml:"current-context"`
	Clusters       []struct {
		Name    string `yaml:"name"`
		Cluster struct {
			Server                   string `yaml:"server"`
			CertificateAuthority     string `yaml:"certificate-authority"`
			CertificateAuthorityData string `yaml:"certificate-authority-data"`
			InsecureSkipTLSVerify    bool   `yaml:"insecure-skip-tls-verify"`
			TLSServerName            string `yaml:"tls-server-name"`
		} `yaml:"cluster"`
	} `yaml:"clusters"`
	Users []struct {
		Name string `yaml:"name"`
		User struct {
			Token                 string `yaml:"token"`
			TokenFile             string `yaml:"tokenFile"`
			ClientCertificate     string `yaml:"client-certificate"`
			ClientCertificateData string `yaml:"client-certificate-data"`
			ClientKey             string `yaml:"client-key"`
			ClientKeyData         string `yaml:"client-key-data"`
			Username              string `yaml:"username"`
			Exec                  any    `yaml:"exec"`
			AuthProvider          any    `yaml:"auth-provider"`
		} `yaml:"user"`
	} `yaml:"users"`
	Contexts []struct {
		Name    string `yaml:"name"`
		Context struct {
			Cluster string `yaml:"cluster"`
			User    string `yaml:"user"`
		} `yaml:"context"`
	} `yaml:"contexts"`
}

// LoadKubeconfig reads a kubeconfig file and resolves its current context (or
// contextName when not empty). Exec plugins and auth providers are refused: they run
// programs, and a talosctl-generated kubeconfig needs neither. Errors wrap
// fail.ErrUsage and name the file and the field.
func LoadKubeconfig(path, contextName string) (*KubeConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fail.Usage(fmt.Errorf("reading kubeconfig: %w", err))
	}
	var f kubeconfigFile
	if err := yaml.Unmarshal(data, &f); err != nil {
		return nil, fail.Usage(fmt.Errorf("parsing kubeconfig %s: %w", path, err))
	}
	cfg, err := f.resolve(filepath.Dir(path), contextName)
	if err != nil {
		return nil, fail.Usage(fmt.Errorf("kubeconfig %s: %w", path, err))
	}
	return cfg, nil
}

func (f *kubeconfigFile) resolve(dir, name string) (*KubeConfig, error) {
	if name == "" {
		name = f.CurrentContext
	}
	if name == "" {
		return nil, errors.New("current-context is not set: set it or pick a context")
	}
	ci := -1
	for i, c := range f.Contexts {
		if c.Name == name {
			ci = i
		}
	}
	if ci < 0 {
		return nil, fmt.Errorf("context %q is not in contexts", name)
	}
	ctx := f.Contexts[ci].Context
	cfg := &KubeConfig{Context: name, TLS: &tls.Config{MinVersion: tls.VersionTLS12}}
	found := false
	for _, c := range f.Clusters {
		if c.Name != ctx.Cluster {
			continue
		}
		found = true
		u, err := url.Parse(c.Cluster.Server)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return nil, fmt.Errorf("clusters[%s].server %q: want an https:// URL", c.Name, c.Cluster.Server)
		}
		if u.User != nil {
			return nil, fmt.Errorf("clusters[%s].server carries credentials: remove them from the URL", c.Name)
		}
		cfg.Server = strings.TrimRight(u.String(), "/")
		cfg.TLS.ServerName = c.Cluster.TLSServerName
		cfg.TLS.InsecureSkipVerify = c.Cluster.InsecureSkipTLSVerify //nolint:gosec // the kubeconfig asks for it
		ca, err := material(dir, c.Cluster.CertificateAuthorityData, c.Cluster.CertificateAuthority)
		if err != nil {
			return nil, fmt.Errorf("clusters[%s].certificate-authority: %w", c.Name, err)
		}
		if ca != nil {
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(ca) {
				return nil, fmt.Errorf("clusters[%s].certificate-authority: no PEM certificate in it", c.Name)
			}
			cfg.TLS.RootCAs = pool
		}
	}
	if !found {
		return nil, fmt.Errorf("context %q names cluster %q, which is not in clusters", name, ctx.Cluster)
	}
	for _, u := range f.Users {
		if u.Name != ctx.User {
			continue
		}
		if err := cfg.addUser(dir, u.Name, u.User.Exec != nil, u.User.AuthProvider != nil, u.User.Token, u.User.TokenFile,
			[2]string{u.User.ClientCertificateData, u.User.ClientCertificate}, [2]string{u.User.ClientKeyData, u.User.ClientKey}); err != nil {
			return nil, err
		}
	}
	return cfg, nil
}

func (cfg *KubeConfig) addUser(dir, name string, exec, authProvider bool, token, tokenFile string, cert, key [2]string) error {
	if exec || authProvider {
		return fmt.Errorf("users[%s]: exec plugins and auth providers are not supported: use a kubeconfig with a client certificate or a token (talosctl kubeconfig writes one)", name)
	}
	if token == "" && tokenFile != "" {
		t, err := os.ReadFile(resolvePath(dir, tokenFile))
		if err != nil {
			return fmt.Errorf("users[%s].tokenFile: %w", name, err)
		}
		token = strings.TrimSpace(string(t))
	}
	cfg.Token = token
	c, err := material(dir, cert[0], cert[1])
	if err != nil {
		return fmt.Errorf("users[%s].client-certificate: %w", name, err)
	}
	k, err := material(dir, key[0], key[1])
	if err != nil {
		return fmt.Errorf("users[%s].client-key: %w", name, err)
	}
	if (c == nil) != (k == nil) {
		return fmt.Errorf("users[%s]: a client certificate needs its key and the other way round", name)
	}
	if c != nil {
		pair, err := tls.X509KeyPair(c, k)
		if err != nil {
			return fmt.Errorf("users[%s]: client certificate: %w", name, err)
		}
		cfg.TLS.Certificates = []tls.Certificate{pair}
	}
	return nil
}

// material is inline base64 data, else the named file (relative to the kubeconfig).
func material(dir, data, file string) ([]byte, error) {
	if data != "" {
		b, err := base64.StdEncoding.DecodeString(data)
		if err != nil {
			return nil, fmt.Errorf("base64: %w", err)
		}
		return b, nil
	}
	if file == "" {
		return nil, nil
	}
	return os.ReadFile(resolvePath(dir, file))
}

func resolvePath(dir, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}
