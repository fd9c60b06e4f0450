package geo

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oschwald/maxminddb-golang/v2"

	"gatehouse/rules/filever"
)

// Config names the databases a DB reads. At least one path is required.
type Config struct {
	// Country is the path of a database whose records carry
	// country.iso_code (GeoLite2-Country, GeoIP2-City, DB-IP Country
	// Lite). Default "": no country lookups.
	Country string
	// ASN is the path of a database whose records carry
	// autonomous_system_number (GeoLite2-ASN, DB-IP ASN Lite). Default
	// "": no ASN lookups.
	ASN string
	// Log receives reloads (info) and failures (warn). nil: discard.
	Log *slog.Logger
}

// DB looks up the country and ASN of addresses. Its methods are safe for
// concurrent use; Country and ASN take no lock and do not allocate.
type DB struct {
	cfg     Config
	log     *slog.Logger
	country file[string]
	asn     file[uint32]
	mu      sync.Mutex // serialises Refresh
}

// file is one database: the current table and its reload state.
type file[T comparable] struct {
	kind string // "country" or "asn", for logs and Stats
	path string
	// cur is the table lookups read; it is never nil once Open returned.
	cur      atomic.Pointer[table[T]]
	failures atomic.Uint64
	// failed is the file state whose load failed, so that a broken file
	// is logged once, and read again only when it changes. Guarded by
	// DB.mu.
	failed  filever.Version
	lastErr atomic.Pointer[string]
}

// table is one loaded database file, immutable.
type table[T comparable] struct {
	reader *maxminddb.Reader
	// values holds each record's value by the record's data offset.
	values   map[uint]T
	state    filever.Version
	build    time.Time
	loadedAt time.Time
}

// maxFileSize bounds a database read whole: GeoLite2-City, the largest
// free file, is about 60 MiB.
const maxFileSize = 512 << 20

// ErrNoRecords is returned for a database none of whose records has the
// field looked up: a country database given as asn, or the reverse.
var ErrNoRecords = errors.New("no record has the field read: a database of the other kind?")

// Open reads the databases cfg names. Any that is missing, unreadable or
// malformed is an error: a rule must never pass for want of its data.
func Open(cfg Config) (*DB, error) {
	if cfg.Country == "" && cfg.ASN == "" {
		return nil, errors.New("geoip: no database configured")
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &DB{cfg: cfg, log: log,
		country: file[string]{kind: "country", path: cfg.Country},
		asn:     file[uint32]{kind: "asn", path: cfg.ASN}}
	if cfg.Country != "" {
		t, err := load(cfg.Country, decodeCountry)
		if err != nil {
			return nil, fmt.Errorf("geoip country database %s: %w", cfg.Country, err)
		}
		d.country.cur.Store(t)
	}
	if cfg.ASN != "" {
		t, err := load(cfg.ASN, decodeASN)
		if err != nil {
			return nil, fmt.Errorf("geoip asn database %s: %w", cfg.ASN, err)
		}
		d.asn.cur.Store(t)
	}
	return d, nil
}

// Config returns the paths d reads.
func (d *DB) Config() (country, asn string) { return d.cfg.Country, d.cfg.ASN }

// HasCountry and HasASN report whether d has that database.
func (d *DB) HasCountry() bool { return d != nil && d.cfg.Country != "" }

// HasASN reports whether d has an ASN database.
func (d *DB) HasASN() bool { return d != nil && d.cfg.ASN != "" }

// Country returns the upper-case ISO 3166-1 alpha-2 code of ip's
// country: the record's country, else its registered country (an
// anycast or satellite network has only the latter). "" for an address
// the database does not list, an invalid ip, or no country database.
func (d *DB) Country(ip netip.Addr) string {
	v, _ := lookup(&d.country, ip)
	return v
}

// ASN returns the number of the autonomous system ip belongs to, 0 when
// unknown or without an ASN database.
func (d *DB) ASN(ip netip.Addr) uint32 {
	v, _ := lookup(&d.asn, ip)
	return v
}

func lookup[T comparable](f *file[T], ip netip.Addr) (T, bool) {
	var zero T
	t := f.cur.Load()
	if t == nil || !ip.IsValid() {
		return zero, false
	}
	res := t.reader.Lookup(ip.Unmap())
	if !res.Found() {
		return zero, false
	}
	v, ok := t.values[uint(res.Offset())]
	return v, ok
}

// Refresh reads again every database whose file changed since it was
// loaded (or since its last failed load). A file that cannot be loaded
// keeps the previous copy serving; the failure is counted, logged once
// per file state, and returned. changed reports whether a new copy was
// swapped in.
func (d *DB) Refresh() (changed bool, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	c1, e1 := refresh(d, &d.country, decodeCountry)
	c2, e2 := refresh(d, &d.asn, decodeASN)
	return c1 || c2, errors.Join(e1, e2)
}

func refresh[T comparable](d *DB, f *file[T], decode func(*maxminddb.Reader, uint) (T, bool, error)) (bool, error) {
	if f.path == "" {
		return false, nil
	}
	st, err := filever.Stat(f.path)
	if err == nil && f.cur.Load().state.Same(st) {
		// Back to the copy serving (a broken file renamed away).
		f.failed = filever.Version{}
		f.lastErr.Store(nil)
		return false, nil
	}
	if err == nil && f.failed.Same(st) {
		return false, nil // failed already; read again when it changes
	}
	var t *table[T]
	if err == nil {
		t, err = load(f.path, decode)
	}
	if err != nil {
		err = fmt.Errorf("geoip %s database %s: %w", f.kind, f.path, err)
		msg := err.Error()
		if prev := f.lastErr.Load(); !st.Known() && prev != nil && *prev == msg {
			return false, err // the same missing file: counted and logged once
		}
		f.failures.Add(1)
		f.lastErr.Store(&msg)
		f.failed = st
		d.log.Warn("geoip database reload failed; the last good copy keeps serving", "database", f.kind, "path", f.path, "error", err)
		return false, err
	}
	f.failed = filever.Version{}
	f.lastErr.Store(nil)
	f.cur.Store(t)
	d.log.Info("geoip database reloaded", "database", f.kind, "path", f.path, "build", t.build.UTC().Format(time.RFC3339), "records", len(t.values))
	return true, nil
}

// load reads path whole, verifies it and decodes each distinct record
// once with decode.
func load[T comparable](path string, decode func(*maxminddb.Reader, uint) (T, bool, error)) (*table[T], error) {
	// The state is the opened file's: a rename after the open leaves a
	// state that differs from the path's, so the next Refresh reads it.
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return nil, err
	}
	st := filever.Of(fi)
	data, err := io.ReadAll(io.LimitReader(fh, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("larger than %d MiB", maxFileSize>>20)
	}
	r, err := maxminddb.OpenBytes(data)
	if err != nil {
		return nil, err
	}
	if err := r.Verify(); err != nil {
		return nil, err
	}
	t := &table[T]{reader: r, values: map[uint]T{}, state: st, build: r.Metadata.BuildTime(), loadedAt: time.Now()}
	if st.Size() != int64(len(data)) {
		// Written to between the stat and the read: the state names
		// another version; the next Refresh reads it again.
		t.state = filever.Version{}
	}
	for res := range r.Networks() {
		if err := res.Err(); err != nil {
			return nil, err
		}
		off := uint(res.Offset())
		if _, seen := t.values[off]; seen {
			continue
		}
		v, ok, err := decode(r, off)
		if err != nil {
			return nil, fmt.Errorf("record for %s: %w", res.Prefix(), err)
		}
		if ok {
			t.values[off] = v
		}
	}
	if len(t.values) == 0 {
		return nil, ErrNoRecords
	}
	return t, nil
}

type countryRecord struct {
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"country"`
	Registered struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"registered_country"`
}

// decodeCountry reads a record's country code. A record without an ISO
// 3166-1 code (none, DB-IP's "ZZ" for unknown, the legacy "EU" and "AP")
// counts as no country, so that rules name all of them "unknown".
func decodeCountry(r *maxminddb.Reader, off uint) (string, bool, error) {
	var rec countryRecord
	if err := r.LookupOffset(uintptr(off)).Decode(&rec); err != nil {
		return "", false, err
	}
	cc := rec.Country.ISOCode
	if cc == "" {
		cc = rec.Registered.ISOCode
	}
	// The upper-case code, interned by the table's record.
	cc, ok := ParseCountry(cc)
	return cc, ok, nil
}

type asnRecord struct {
	Number uint32 `maxminddb:"autonomous_system_number"`
}

func decodeASN(r *maxminddb.Reader, off uint) (uint32, bool, error) {
	var rec asnRecord
	if err := r.LookupOffset(uintptr(off)).Decode(&rec); err != nil {
		return 0, false, err
	}
	return rec.Number, rec.Number != 0, nil
}

// Check opens the database at path as Open would, without keeping it,
// for a config check: it reports a missing, unreadable or malformed file
// and one that has no record of the kind asked ("country" or "asn").
func Check(kind, path string) error {
	var err error
	switch kind {
	case "country":
		_, err = load(path, decodeCountry)
	case "asn":
		_, err = load(path, decodeASN)
	default:
		return fmt.Errorf("unknown geoip database kind %q", kind)
	}
	return err
}

// FileStats describes one database for metrics and the dashboard.
type FileStats struct {
	// Path is the configured file; "" when the database is not configured.
	Path string
	// Build is the build time the file's metadata gives.
	Build time.Time
	// Loaded is when the copy serving now was read.
	Loaded time.Time
	// Records is the number of distinct records with a value.
	Records int
	// ReloadFailures counts the failed reloads since Open.
	ReloadFailures uint64
	// LastError is the last reload's error while it stands; "" once a
	// reload succeeded.
	LastError string
}

// Stats is a snapshot of both databases.
type Stats struct {
	Country, ASN FileStats
}

// Stats returns the state of d's databases.
func (d *DB) Stats() Stats {
	return Stats{Country: fileStats(&d.country), ASN: fileStats(&d.asn)}
}

func fileStats[T comparable](f *file[T]) FileStats {
	s := FileStats{Path: f.path, ReloadFailures: f.failures.Load()}
	if t := f.cur.Load(); t != nil {
		s.Build, s.Loaded, s.Records = t.build, t.loadedAt, len(t.values)
	}
	if e := f.lastErr.Load(); e != nil {
		s.LastError = *e
	}
	return s
}
