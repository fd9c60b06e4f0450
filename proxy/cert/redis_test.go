package cert

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/redis/go-redis/v9"

	"gatehouse/rules/fleet/fleettest"
)

func newTestCertStorage(t *testing.T, r *fleettest.Redis, cfg RedisConfig) *Redis {
	t.Helper()
	if cfg.Redis == nil {
		cfg.Redis = r.Client(t)
	}
	return NewRedis(cfg)
}

// TestCertStorageMatchesFileStorage runs one sequence of operations
// against the Redis storage and certmagic's FileStorage and compares
// every result.
func TestCertStorageMatchesFileStorage(t *testing.T) {
	t.Parallel()
	r := fleettest.Start(t)
	ctx := t.Context()
	stores := map[string]certmagic.Storage{
		"redis": newTestCertStorage(t, r, RedisConfig{}),
		"file":  &certmagic.FileStorage{Path: t.TempDir()},
	}
	type result struct {
		out      string
		notExist bool
	}
	ops := []struct {
		name string
		do   func(certmagic.Storage) (string, error)
	}{
		{"load missing", func(s certmagic.Storage) (string, error) { v, err := s.Load(ctx, "acme/a.json"); return string(v), err }},
		{"store cert", func(s certmagic.Storage) (string, error) {
			return "", s.Store(ctx, "certificates/ca/example.com/example.com.crt", []byte("CERT"))
		}},
		{"store key", func(s certmagic.Storage) (string, error) {
			return "", s.Store(ctx, "certificates/ca/example.com/example.com.key", []byte("KEY"))
		}},
		{"store other", func(s certmagic.Storage) (string, error) {
			return "", s.Store(ctx, "certificates/ca/www.example.com/www.example.com.crt", []byte("CERT2"))
		}},
		{"store account", func(s certmagic.Storage) (string, error) {
			return "", s.Store(ctx, "acme/ca/users/ops/ops.json", []byte("{}"))
		}},
		{"overwrite", func(s certmagic.Storage) (string, error) {
			return "", s.Store(ctx, "certificates/ca/example.com/example.com.crt", []byte("CERT-RENEWED"))
		}},
		{"load", func(s certmagic.Storage) (string, error) {
			v, err := s.Load(ctx, "certificates/ca/example.com/example.com.crt")
			return string(v), err
		}},
		{"exists file", func(s certmagic.Storage) (string, error) {
			return fmt.Sprint(s.Exists(ctx, "certificates/ca/example.com/example.com.key")), nil
		}},
		{"exists dir", func(s certmagic.Storage) (string, error) { return fmt.Sprint(s.Exists(ctx, "certificates/ca")), nil }},
		{"exists missing", func(s certmagic.Storage) (string, error) { return fmt.Sprint(s.Exists(ctx, "certificates/cb")), nil }},
		{"list flat", func(s certmagic.Storage) (string, error) {
			keys, err := s.List(ctx, "certificates/ca", false)
			slices.Sort(keys)
			return fmt.Sprint(keys), err
		}},
		{"list recursive", func(s certmagic.Storage) (string, error) {
			keys, err := s.List(ctx, "certificates", true)
			slices.Sort(keys)
			return fmt.Sprint(keys), err
		}},
		{"list missing", func(s certmagic.Storage) (string, error) {
			keys, err := s.List(ctx, "nothing", true)
			return fmt.Sprint(keys), err
		}},
		{"stat file", func(s certmagic.Storage) (string, error) {
			ki, err := s.Stat(ctx, "certificates/ca/example.com/example.com.crt")
			return fmt.Sprint(ki.Key, ki.Size, ki.IsTerminal, !ki.Modified.IsZero()), err
		}},
		{"stat dir", func(s certmagic.Storage) (string, error) {
			ki, err := s.Stat(ctx, "certificates/ca/example.com")
			return fmt.Sprint(ki.Key, ki.IsTerminal), err
		}},
		{"stat missing", func(s certmagic.Storage) (string, error) {
			_, err := s.Stat(ctx, "certificates/ca/nope")
			return "", err
		}},
		{"delete dir", func(s certmagic.Storage) (string, error) { return "", s.Delete(ctx, "certificates/ca/example.com") }},
		{"load deleted", func(s certmagic.Storage) (string, error) {
			v, err := s.Load(ctx, "certificates/ca/example.com/example.com.key")
			return string(v), err
		}},
		{"list after delete", func(s certmagic.Storage) (string, error) {
			keys, err := s.List(ctx, "certificates", true)
			slices.Sort(keys)
			return fmt.Sprint(keys), err
		}},
		{"delete missing", func(s certmagic.Storage) (string, error) { return "", s.Delete(ctx, "no/such/key") }},
	}
	for _, op := range ops {
		got := map[string]result{}
		for name, s := range stores {
			out, err := op.do(s)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("%s on %s: unexpected error %v", op.name, name, err)
			}
			got[name] = result{out, errors.Is(err, fs.ErrNotExist)}
		}
		if got["redis"] != got["file"] {
			t.Errorf("%s: redis = %+v, file = %+v, want the same", op.name, got["redis"], got["file"])
		}
	}
}

func TestCertLocksExclude(t *testing.T) {
	t.Parallel()
	r := fleettest.Start(t)
	ctx := t.Context()
	lease := 300 * time.Millisecond
	a := newTestCertStorage(t, r, RedisConfig{Lease: lease, Poll: 20 * time.Millisecond})
	b := newTestCertStorage(t, r, RedisConfig{Lease: lease, Poll: 20 * time.Millisecond})

	if ok, err := a.TryLock(ctx, "issue_cert_example.com"); !ok || err != nil {
		t.Fatalf("a.TryLock = %v, %v, want true", ok, err)
	}
	if ok, err := b.TryLock(ctx, "issue_cert_example.com"); ok || err != nil {
		t.Fatalf("b.TryLock while a holds it = %v, %v, want false", ok, err)
	}
	if err := b.Unlock(ctx, "issue_cert_example.com"); err == nil {
		t.Error("b.Unlock of a's lock succeeded")
	}
	// Held across several leases: the renewal keeps it.
	cctx, cancel := context.WithTimeout(ctx, 4*lease)
	err := b.Lock(cctx, "issue_cert_example.com")
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("b.Lock while a renews = %v, want the context's deadline", err)
	}
	if err := a.Unlock(ctx, "issue_cert_example.com"); err != nil {
		t.Fatalf("a.Unlock = %v", err)
	}
	if err := b.Lock(ctx, "issue_cert_example.com"); err != nil {
		t.Fatalf("b.Lock after a released = %v", err)
	}
	if err := b.Unlock(ctx, "issue_cert_example.com"); err != nil {
		t.Fatalf("b.Unlock = %v", err)
	}
}

func TestCertLockTakenOverAfterHolderDies(t *testing.T) {
	t.Parallel()
	r := fleettest.Start(t)
	ctx := t.Context()
	lease := 300 * time.Millisecond
	dying := redis.NewClient(&redis.Options{Addr: r.Addr, MaxRetries: -1})
	a := newTestCertStorage(t, r, RedisConfig{Redis: dying, Lease: lease})
	b := newTestCertStorage(t, r, RedisConfig{Lease: lease, Poll: 20 * time.Millisecond})
	if ok, err := a.TryLock(ctx, "renew"); !ok || err != nil {
		t.Fatalf("a.TryLock = %v, %v", ok, err)
	}
	dying.Close() // a's process is gone: nobody renews its lease
	start := time.Now()
	lctx, cancel := context.WithTimeout(ctx, 20*lease)
	defer cancel()
	if err := b.Lock(lctx, "renew"); err != nil {
		t.Fatalf("b.Lock after a died = %v", err)
	}
	t.Logf("lock taken over %s after its holder died (lease %s)", time.Since(start).Round(time.Millisecond), lease)
	if err := b.Unlock(ctx, "renew"); err != nil {
		t.Fatal(err)
	}
}

func TestCertStorageMirrorServesDuringOutage(t *testing.T) {
	t.Parallel()
	r := fleettest.Start(t)
	ctx := t.Context()
	mirror := &certmagic.FileStorage{Path: filepath.Join(t.TempDir(), "certs")}
	s := newTestCertStorage(t, r, RedisConfig{Mirror: mirror})
	// Another node stored the certificate; this node's Load mirrors it.
	other := newTestCertStorage(t, r, RedisConfig{})
	if err := other.Store(ctx, "certificates/ca/example.com/example.com.crt", []byte("CERT")); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Load(ctx, "certificates/ca/example.com/example.com.crt"); err != nil || string(v) != "CERT" {
		t.Fatalf("Load = %q, %v", v, err)
	}
	r.Kill()
	// A restarted node, Redis still down.
	restarted := newTestCertStorage(t, r, RedisConfig{Mirror: mirror})
	v, err := restarted.Load(ctx, "certificates/ca/example.com/example.com.crt")
	if err != nil || string(v) != "CERT" {
		t.Fatalf("Load during the outage = %q, %v, want the mirrored certificate", v, err)
	}
	if !restarted.Exists(ctx, "certificates/ca/example.com") {
		t.Error("Exists during the outage = false, want the mirror's answer")
	}
	if _, err := restarted.TryLock(ctx, "x"); err == nil {
		t.Error("TryLock during the outage succeeded; a lock must not be granted without Redis")
	}
}
