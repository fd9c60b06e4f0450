package config

import (
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
)

// TrustedListCopy is where the last good copy of a named trusted_proxies
// set that gatehouse fetches (a provider's ranges, a url: list) is kept
// under stateDir: intel/trusted-<provider>.txt, or for a url: list
// intel/trusted-url-<hash of the URL>.txt, so that a changed URL never
// starts from another list's copy. "" for a file: list or a prefix.
func TrustedListCopy(stateDir string, t TrustedProxy) string {
	switch {
	case t.Provider != "":
		return filepath.Join(stateDir, "intel", "trusted-"+t.Provider+".txt")
	case t.URL != "":
		sum := sha256.Sum256([]byte(t.URL))
		return filepath.Join(stateDir, "intel", "trusted-url-"+hex.EncodeToString(sum[:8])+".txt")
	}
	return ""
}
