package watch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// FileConfig configures a FileSource.
type FileConfig struct {
	// Name is the source's name (the watch entry): Line.Source, and
	// part of the position keys. Required.
	Name string
	// Paths are file paths or globs (filepath.Match syntax, in the last
	// element or any other). At least one.
	Paths []string
	// Positions keeps the read positions across restarts; nil keeps
	// them only in memory (every start is a first start).
	Positions Positions
	// Tail starts a file that has no saved position at its end, at the
	// first start only; files that appear later are always read from
	// their start. Default false: read from the start, as fail2ban's
	// default `head` does (a line's own time decides whether it counts).
	Tail bool
	// PollInterval is how often the files are re-examined without an
	// inotify wake-up. Default 1s where inotify works, 250ms where not.
	PollInterval time.Duration
	// SaveInterval is the least time between two saves of a file's
	// position while lines flow. Default 1s.
	SaveInterval time.Duration
	// RotateGrace is how long a file rotated away by rename (or deleted)
	// is still read after its last new data: its writer may append until
	// it reopens its log. Default 5s.
	RotateGrace time.Duration
	// MaxLineBytes bounds a line: the bytes past it are dropped (the
	// line is handed over cut). Default 64 KiB.
	MaxLineBytes int
	// MaxFiles bounds the files followed at once (each holds an open
	// descriptor): of the matching files, the first MaxFiles in path
	// order are followed, the others are not opened (logged once, and
	// named by Check). Path order, not the newest by time, so that the
	// set followed stays the same from one look to the next. Default 512.
	MaxFiles int
}

const (
	defaultPoll        = time.Second
	defaultPollNoWatch = 250 * time.Millisecond
	defaultSave        = time.Second
	defaultGrace       = 5 * time.Second
	defaultMaxLine     = 64 << 10
	defaultMaxFiles    = 512
	headMax            = 1024
	readBufSize        = 64 << 10
)

// compressedExts are rotation suffixes that are never read.
var compressedExts = []string{".gz", ".bz2", ".xz", ".zst", ".lz4", ".Z"}

// FileSource follows log files; see the package documentation for
// rotation and restarts. It has one Run at a time; Check may run
// concurrently with it.
type FileSource struct {
	cfg FileConfig
	log *slog.Logger
	now func() time.Time

	// Run's state.
	buf     []byte
	current map[string]*tailer // by path
	retired []*tailer          // rotated away, read until quiet
	warned  map[string]string  // path → last open/stat problem logged
	rescued map[fileID]int64   // rotated files read by rescue, and how far
	first   bool
	over    int      // matching files not followed (past MaxFiles), as last logged
	seen    []string // every matching file of the last look, followed or not
}

// tailer is one open file.
type tailer struct {
	path     string
	f        *os.File
	id       fileID
	readOff  int64 // read up to here (including the partial line)
	off      int64 // past the last line handed over
	partial  []byte
	cut      bool // partial reached MaxLineBytes; the rest is dropped
	headLen  int
	headHash uint64
	// head holds the file's first min(readOff, headMax) bytes as they
	// were read, until headLen reaches headMax. The hash is taken from
	// them, not from the file again: by the time the lines are handed
	// over, a copytruncate may have replaced those bytes, and a hash of
	// the new ones would neither find the copy nor notice the truncation.
	head     []byte
	dirty    bool
	lastSave time.Time
	lastData time.Time // retired: last new data, or retirement
	// retiredAt is when the file was rotated away (retired only).
	retiredAt time.Time
	// saveAs, for a rotated file read by rescue, is the position its
	// lines are handed over as: the saved position of the live path it
	// is read for (saveKey), at the offset reached in the rotated file.
	// A consumer that saves it resumes in that rotated file after a
	// restart, as rescue then finds it again.
	saveAs  *Position
	saveKey string
	// held: the file replaced one rotated away from its path, and waits
	// to be read until that one is done (see holding).
	held bool
}

// maxHold bounds how long a file that replaced a rotated one waits to be
// read while the rotated one is still written (see scan).
const maxHold = 30 * time.Second

// NewFileSource checks cfg and applies the defaults. It opens nothing:
// Run does.
func NewFileSource(cfg FileConfig, log *slog.Logger) (*FileSource, error) {
	if cfg.Name == "" {
		return nil, errors.New("file source: no name")
	}
	if len(cfg.Paths) == 0 {
		return nil, fmt.Errorf("file source %s: no paths", cfg.Name)
	}
	for _, p := range cfg.Paths {
		if _, err := filepath.Match(p, ""); err != nil {
			return nil, fmt.Errorf("file source %s: path %q: %w", cfg.Name, p, err)
		}
	}
	if cfg.PollInterval < 0 || cfg.SaveInterval < 0 || cfg.RotateGrace < 0 || cfg.MaxLineBytes < 0 || cfg.MaxFiles < 0 {
		return nil, fmt.Errorf("file source %s: negative interval or size", cfg.Name)
	}
	cfg.SaveInterval = orDefault(cfg.SaveInterval, defaultSave)
	cfg.RotateGrace = orDefault(cfg.RotateGrace, defaultGrace)
	cfg.MaxLineBytes = orDefault(cfg.MaxLineBytes, defaultMaxLine)
	cfg.MaxFiles = orDefault(cfg.MaxFiles, defaultMaxFiles)
	if cfg.Positions == nil {
		cfg.Positions = newMemPositions()
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &FileSource{
		cfg: cfg,
		log: log.With("component", "watch", "source", cfg.Name),
		now: time.Now,
	}, nil
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Check says why the source cannot be read now, without failing: no
// file matches (ErrNoFile), a file or directory cannot be read
// (ErrPermission), or more files match than are followed
// (ErrTooManyFiles). nil if every matching file is followed and can be
// opened.
func (s *FileSource) Check() error {
	var errs []error
	paths, dirErrs := s.expand()
	errs = append(errs, dirErrs...)
	if len(paths) == 0 && len(dirErrs) == 0 {
		errs = append(errs, fmt.Errorf("watch %s: %s: %w", s.cfg.Name, strings.Join(s.cfg.Paths, ", "), ErrNoFile))
	}
	if len(paths) > s.cfg.MaxFiles {
		errs = append(errs, fmt.Errorf("watch %s: %d files match %s, the first %d in path order are read (max_files), from %s to %s: %w",
			s.cfg.Name, len(paths), strings.Join(s.cfg.Paths, ", "), s.cfg.MaxFiles, paths[0], paths[s.cfg.MaxFiles-1], ErrTooManyFiles))
		paths = paths[:s.cfg.MaxFiles]
	}
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			errs = append(errs, s.openError(p, err))
			continue
		}
		_ = f.Close() // opened read-only to test access
	}
	return errors.Join(errs...)
}

func (s *FileSource) openError(path string, err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("watch %s: read %s: %w", s.cfg.Name, path, ErrPermission)
	}
	return fmt.Errorf("watch %s: read %s: %w", s.cfg.Name, path, err)
}

// expand returns the regular files the paths name now, sorted, and the
// directories that exist but cannot be listed.
func (s *FileSource) expand() ([]string, []error) {
	var out []string
	var errs []error
	for _, pat := range s.cfg.Paths {
		m, _ := filepath.Glob(pat) // the pattern was checked by NewFileSource
		if len(m) == 0 {
			dir := filepath.Dir(pat)
			if _, err := os.ReadDir(dir); errors.Is(err, fs.ErrPermission) {
				errs = append(errs, fmt.Errorf("watch %s: list %s: %w", s.cfg.Name, dir, ErrPermission))
			}
		}
		for _, p := range m {
			if slices.ContainsFunc(compressedExts, func(ext string) bool { return strings.HasSuffix(p, ext) }) {
				continue
			}
			if st, err := os.Stat(p); err == nil && !st.Mode().IsRegular() {
				continue
			}
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), errs
}

// dirs returns the directories to watch for changes.
func (s *FileSource) dirs() []string {
	var out []string
	for _, pat := range s.cfg.Paths {
		out = append(out, filepath.Dir(pat))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Run follows the files until ctx is done, sending each line on out.
// Files that cannot be read are logged (once per problem) and tried
// again at every poll. It returns nil when ctx is done, after saving
// the positions of the lines handed over, or the error of that save.
func (s *FileSource) Run(ctx context.Context, out chan<- Line) error {
	s.reset()
	defer s.closeAll()

	poll := s.cfg.PollInterval
	w, err := newDirWatcher(s.dirs())
	if err != nil {
		s.log.Debug("watch: no inotify, polling", "err", err, "interval_seconds", orDefault(poll, defaultPollNoWatch).Seconds())
		poll = orDefault(poll, defaultPollNoWatch)
	} else {
		defer w.Close()
		poll = orDefault(poll, defaultPoll)
	}
	tick := time.NewTicker(poll)
	defer tick.Stop()
	var wake <-chan struct{}
	if w != nil {
		wake = w.C()
	}
	for {
		if w != nil {
			w.Add(s.dirs()) // directories created since the start
		}
		if err := s.scan(ctx, out); err != nil {
			return s.saveAll(true)
		}
		s.first = false
		if err := s.saveAll(false); err != nil {
			s.log.Warn("watch positions not saved", "err", err)
		}
		select {
		case <-ctx.Done():
			return s.saveAll(true)
		case <-wake:
		case <-tick.C:
		}
	}
}

// reset sets up Run's state for a first scan.
func (s *FileSource) reset() {
	s.buf = make([]byte, readBufSize)
	s.current = map[string]*tailer{}
	s.retired = nil
	s.warned = map[string]string{}
	s.rescued = map[fileID]int64{}
	s.first = true
	s.over = 0
}

func (s *FileSource) closeAll() {
	for _, t := range s.current {
		_ = t.f.Close() // read-only
	}
	for _, t := range s.retired {
		_ = t.f.Close() // read-only
	}
	s.current, s.retired = nil, nil
}

// scan re-examines the paths and reads every file to its end. It
// returns an error only when ctx is done.
func (s *FileSource) scan(ctx context.Context, out chan<- Line) error {
	return s.place(ctx, out, s.look())
}

// view is what the paths name at one look: the matching files, sorted,
// and the identity of each. The two are taken one after the other, not
// at once: a rename between the glob and a stat makes the view hold the
// new file under the old name and miss the renamed one (a glob before
// log.1 → log.2.gz and log → log.1, the stats after).
type view struct {
	paths []string
	ids   map[string]fileID
}

func (s *FileSource) look() view {
	paths, _ := s.expand()
	s.seen = paths
	if over := len(paths) - s.cfg.MaxFiles; over > 0 {
		// The newest files are followed: the live log is among them,
		// whatever rotated names sort before it.
		paths = newest(paths, s.cfg.MaxFiles)
		if over != s.over {
			// Logged when the count changes, not at every look.
			s.log.Warn("watch follows only the most recently written files: more match than max_files",
				"matching", len(s.seen), "max_files", s.cfg.MaxFiles, "not_followed", over)
		}
	}
	s.over = max(len(s.seen)-s.cfg.MaxFiles, 0)
	v := view{paths: paths, ids: make(map[string]fileID, len(paths))}
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			continue // gone since the glob
		}
		v.ids[p] = idOf(st)
	}
	return v
}

// place follows what v shows: renamed files under their new names,
// rotated ones retired, new ones opened; then reads every file to its
// end, the rotated and the known files before the new ones.
func (s *FileSource) place(ctx context.Context, out chan<- Line, v view) error {
	clear(s.rescued)
	owner := make(map[fileID]string, len(v.ids))
	for _, p := range v.paths {
		if id, ok := v.ids[p]; ok {
			owner[id] = p
		}
	}
	// A retired file that a matching name shows again was renamed within
	// the globs, and a view taken across the rename missed it: it is
	// followed on under that name. Left retired, it would be closed once
	// quiet and then, no longer tracked, opened under its new name as a
	// new file and read again from its first byte.
	keep := s.retired[:0]
	for _, t := range s.retired {
		if np, ok := owner[t.id]; ok && s.current[np] == nil {
			t.path = np
			s.current[np] = t
			t.dirty = true
			continue
		}
		keep = append(keep, t)
	}
	clear(s.retired[len(keep):])
	s.retired = keep
	// Files that were rotated away, renamed within the globs, or whose
	// path names another file now. Taken out first, then placed, so that
	// a chain of renames (log.1 → log.2, log → log.1) keeps every file;
	// placed in path order, so that a run does not depend on map order.
	var moved []*tailer
	for p, t := range s.current {
		if v.ids[p] != t.id {
			delete(s.current, p)
			moved = append(moved, t)
		}
	}
	slices.SortFunc(moved, func(a, b *tailer) int { return strings.Compare(a.path, b.path) })
	for _, t := range moved {
		if np, ok := owner[t.id]; ok && s.current[np] == nil {
			// Renamed to another matching name: same file, new key.
			t.path = np
			s.current[np] = t
			t.dirty = true
			continue
		}
		t.lastData = s.now()
		t.retiredAt = t.lastData
		s.retired = append(s.retired, t)
	}
	// Read what the rotated files still have, then the files already
	// followed (among them those renamed within the globs), then the new
	// ones: the lines a rotated file got before its successor appeared
	// come before the successor's.
	if err := s.drainRetired(ctx, out); err != nil {
		return err
	}
	for _, p := range v.paths {
		t := s.current[p]
		if t == nil {
			continue
		}
		if err := s.checkTruncated(ctx, out, t); err != nil {
			return err
		}
		if t.held {
			if s.holding(p) {
				continue // see below
			}
			t.held = false
		}
		if err := s.drain(ctx, out, t); err != nil {
			return err
		}
	}
	for _, p := range v.paths {
		id, ok := v.ids[p]
		if !ok || s.current[p] != nil || s.tracked(id) {
			continue
		}
		t, err := s.open(ctx, out, p)
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			if msg := err.Error(); s.warned[p] != msg {
				s.warned[p] = msg
				s.log.Warn("watch cannot read file", "path", p, "err", err)
			}
			continue
		}
		delete(s.warned, p)
		if t == nil {
			continue // p names a followed file by now: the next look places it
		}
		s.current[p] = t
		if t.held = s.holding(p); t.held {
			// The file rotated away from p is still being written: its
			// lines come first, so that the position saved for p never
			// moves back and forth between the two files (a restart
			// would then read one of them twice). This one is open and
			// followed meanwhile, so that a rotation of its own before
			// the hold ends retires it in turn, unread lines and all.
			continue
		}
		if err := s.drain(ctx, out, t); err != nil {
			return err
		}
	}
	return nil
}

// newest returns the n most recently modified of paths, in path order.
func newest(paths []string, n int) []string {
	type file struct {
		path string
		mod  time.Time
	}
	fs := make([]file, 0, len(paths))
	for _, p := range paths {
		var mod time.Time
		if st, err := os.Stat(p); err == nil {
			mod = st.ModTime()
		}
		fs = append(fs, file{p, mod})
	}
	slices.SortStableFunc(fs, func(a, b file) int { return b.mod.Compare(a.mod) })
	out := make([]string, 0, n)
	for _, f := range fs[:n] {
		out = append(out, f.path)
	}
	slices.Sort(out)
	return out
}

// holding reports whether a file rotated away from path is still read
// (it is retired until quiet for RotateGrace), for at most maxHold.
func (s *FileSource) holding(path string) bool {
	now := s.now()
	for _, t := range s.retired {
		if t.path == path && now.Sub(t.retiredAt) < maxHold {
			return true
		}
	}
	return false
}

func (s *FileSource) tracked(id fileID) bool {
	for _, t := range s.current {
		if t.id == id {
			return true
		}
	}
	for _, t := range s.retired {
		if t.id == id {
			return true
		}
	}
	return false
}

// drainRetired reads the rotated files and closes those quiet for
// RotateGrace, handing over their last partial line.
func (s *FileSource) drainRetired(ctx context.Context, out chan<- Line) error {
	keep := s.retired[:0]
	for i, t := range s.retired {
		before := t.readOff
		if err := s.drain(ctx, out, t); err != nil {
			s.retired = append(keep, s.retired[i:]...)
			return err
		}
		now := s.now()
		if t.readOff != before {
			t.lastData = now
		}
		if now.Sub(t.lastData) < s.cfg.RotateGrace {
			keep = append(keep, t)
			continue
		}
		if len(t.partial) > 0 {
			if err := s.send(ctx, out, t, t.partial, t.readOff); err != nil {
				s.retired = append(keep, s.retired[i:]...)
				return err
			}
			t.partial = t.partial[:0]
		}
		_ = t.f.Close() // read-only
	}
	clear(s.retired[len(keep):])
	s.retired = keep
	return nil
}

// open opens path and places it (nil if the file there is followed
// already): at its saved position if the file is
// the one saved; else, at the first scan, after reading the rest of the
// saved file from a rotated sibling; at the start, or at the end with
// Tail at the first start.
func (s *FileSource) open(ctx context.Context, out chan<- Line, path string) (*tailer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, s.openError(path, err)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close() // read-only
		return nil, fmt.Errorf("stat %s: %w", path, err)
	}
	t := &tailer{path: path, f: f, id: idOf(st), dirty: true}
	if s.tracked(t.id) {
		// Renamed to path since the look: one tailer per file.
		_ = f.Close() // read-only
		return nil, nil
	}
	saved, ok := s.cfg.Positions.Position(fileKey(s.cfg.Name, path))
	switch {
	case ok && saved.Dev == t.id.dev && saved.Ino == t.id.ino && st.Size() >= saved.Offset && headMatches(f, saved):
		t.readOff, t.off = saved.Offset, saved.Offset
		t.headLen, t.headHash = saved.HeadLen, saved.HeadHash
		t.dirty = false
	case ok && s.first:
		held, err := s.rescue(ctx, out, path, saved, t.id)
		if err != nil || held {
			// held: the saved file, renamed away while gatehouse was
			// down, is followed as rotated away from path; the file at
			// path waits for it as after a rotation seen running.
			_ = f.Close() // read-only
			return nil, err
		}
	case !ok && s.first && s.savedUnder(path, t.id, f, st.Size(), &saved):
		// Renamed within the globs while gatehouse was down
		// (auth.log → auth-1.log): it goes on where it was read to.
		t.readOff, t.off = saved.Offset, saved.Offset
		t.headLen, t.headHash = saved.HeadLen, saved.HeadHash
	case !ok && s.first && s.cfg.Tail:
		t.readOff = lineStartBefore(f, st.Size())
		t.off = t.readOff
	}
	if end, ok := s.rescued[t.id]; ok {
		// Read to end by rescue in this scan, under another name.
		t.readOff, t.off = end, end
	}
	t.loadHead()
	return t, nil
}

// savedUnder finds, among the positions saved for the other paths of
// the last look, one of the file f (same device, inode and first bytes,
// at least as long): the file was renamed within the globs. It sets
// *saved to it.
func (s *FileSource) savedUnder(path string, id fileID, f *os.File, size int64, saved *Position) bool {
	for _, q := range s.seen {
		if q == path {
			continue
		}
		p, ok := s.cfg.Positions.Position(fileKey(s.cfg.Name, q))
		if ok && p.Dev == id.dev && p.Ino == id.ino && size >= p.Offset && headMatches(f, p) {
			*saved = p
			return true
		}
	}
	return false
}

// lineStartBefore returns the offset just past the last newline before
// size (within the last MaxLineBytes), or size: a line being written
// when a Tail start happens is read whole.
func lineStartBefore(f *os.File, size int64) int64 {
	start := max(0, size-defaultMaxLine)
	b := make([]byte, size-start)
	if _, err := f.ReadAt(b, start); err != nil {
		return size
	}
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		return start + int64(i) + 1
	}
	return size
}

// checkTruncated notices a copytruncate (the file is shorter than what
// was read, or its first bytes changed): it reads what was written
// before the truncation from the copy, then starts the file over.
func (s *FileSource) checkTruncated(ctx context.Context, out chan<- Line, t *tailer) error {
	st, err := t.f.Stat()
	if err != nil {
		return nil
	}
	if st.Size() >= t.readOff && headMatches(t.f, Position{HeadLen: t.headLen, HeadHash: t.headHash}) {
		return nil
	}
	s.log.Info("watch file truncated, reading from its start", "path", t.path)
	if _, err := s.rescue(ctx, out, t.path, t.position(), t.id); err != nil {
		return err
	}
	t.readOff, t.off, t.partial, t.cut = 0, 0, t.partial[:0], false
	t.headLen, t.headHash, t.head, t.dirty = 0, 0, t.head[:0], true
	return nil
}

// rescue reads the lines past saved.Offset from the file saved
// describes, found as a sibling of path: by device and inode (renamed),
// or by the hash of its first bytes (copied, for copytruncate). Files
// that a tailer follows, and exclude (the file now at path), are not
// candidates.
//
// A copy is read to its end and closed; its lines carry saved's key and
// file, so a consumer that saves them finds the copy again after a
// restart. A renamed file, which its writer may still append to until
// it reopens its log, is retired as rotated away from path (its lines
// carry path's key and its own position, as before the rename) and
// followed until quiet; held is then true, and path's new file waits for
// it (see holding).
func (s *FileSource) rescue(ctx context.Context, out chan<- Line, path string, saved Position, exclude fileID) (held bool, err error) {
	dir, base := filepath.Split(path)
	entries, err := os.ReadDir(filepath.Clean(dir))
	if err != nil {
		return false, nil
	}
	for _, e := range entries {
		name := e.Name()
		if name == base || !strings.HasPrefix(name, base) || !e.Type().IsRegular() ||
			slices.ContainsFunc(compressedExts, func(ext string) bool { return strings.HasSuffix(name, ext) }) {
			continue
		}
		p := filepath.Join(dir, name)
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		st, err := f.Stat()
		if err != nil {
			_ = f.Close() // read-only
			continue
		}
		id := idOf(st)
		same := id.dev == saved.Dev && id.ino == saved.Ino
		copied := saved.HeadLen > 0 && !same
		if id == exclude || s.tracked(id) || st.Size() < saved.Offset || !(same || copied) || !headMatches(f, saved) {
			_ = f.Close() // read-only
			continue
		}
		s.log.Info("watch reading the rest of a rotated file", "path", p, "offset", saved.Offset)
		if same {
			now := s.now()
			t := &tailer{path: path, f: f, id: id, readOff: saved.Offset, off: saved.Offset,
				headLen: saved.HeadLen, headHash: saved.HeadHash, lastData: now, retiredAt: now}
			t.loadHead()
			s.retired = append(s.retired, t)
			return true, s.drain(ctx, out, t)
		}
		as := saved
		t := &tailer{path: p, f: f, id: id, readOff: saved.Offset, off: saved.Offset, saveAs: &as, saveKey: path}
		err = s.drain(ctx, out, t)
		if err == nil && len(t.partial) > 0 {
			err = s.send(ctx, out, t, t.partial, t.readOff)
		}
		s.rescued[id] = t.readOff
		_ = f.Close() // read-only
		return false, err
	}
	return false, nil
}

// headMatches reports whether the first p.HeadLen bytes of f hash to
// p.HeadHash (true when HeadLen is 0).
func headMatches(f *os.File, p Position) bool {
	if p.HeadLen == 0 {
		return true
	}
	b := make([]byte, p.HeadLen)
	if _, err := f.ReadAt(b, 0); err != nil {
		return false
	}
	return hashHead(b) == p.HeadHash
}

func hashHead(b []byte) uint64 {
	h := fnv.New64a()
	_, _ = h.Write(b) // never fails
	return h.Sum64()
}

// drain reads t to its end, handing over each complete line.
func (s *FileSource) drain(ctx context.Context, out chan<- Line, t *tailer) error {
	for {
		n, err := t.f.ReadAt(s.buf, t.readOff)
		chunk := s.buf[:n]
		if t.readOff < headMax && int64(len(t.head)) == t.readOff {
			t.head = append(t.head, chunk[:min(int64(n), headMax-t.readOff)]...)
		}
		t.readOff += int64(n)
		for len(chunk) > 0 {
			i := bytes.IndexByte(chunk, '\n')
			if i < 0 {
				t.hold(chunk, s.cfg.MaxLineBytes)
				break
			}
			line := chunk[:i]
			chunk = chunk[i+1:]
			if len(t.partial) > 0 {
				t.hold(line, s.cfg.MaxLineBytes)
				line = t.partial
			} else if len(line) > s.cfg.MaxLineBytes {
				line = line[:s.cfg.MaxLineBytes]
			}
			if err := s.send(ctx, out, t, line, t.readOff-int64(len(chunk))); err != nil {
				return err
			}
			t.partial, t.cut = t.partial[:0], false
			t.off = t.readOff - int64(len(chunk))
			t.dirty = true
			t.updateHead()
		}
		if n == 0 || errors.Is(err, io.EOF) {
			t.updateHead()
			return nil
		}
		if err != nil {
			s.log.Warn("watch read failed", "path", t.path, "err", err)
			return nil
		}
	}
}

// hold keeps b as (part of) the partial line, up to max bytes.
func (t *tailer) hold(b []byte, max int) {
	if room := max - len(t.partial); len(b) > room {
		b = b[:room]
		t.cut = true
	}
	t.partial = append(t.partial, b...)
}

func (s *FileSource) send(ctx context.Context, out chan<- Line, t *tailer, text []byte, after int64) error {
	text = bytes.TrimSuffix(text, []byte{'\r'})
	key, pos := fileKey(s.cfg.Name, t.path), t.position()
	if t.saveAs != nil {
		key, pos = fileKey(s.cfg.Name, t.saveKey), *t.saveAs
	}
	if t.saveAs == nil {
		pos.HeadLen, pos.HeadHash = t.headAt(after)
	}
	pos.Offset = after
	if int64(pos.HeadLen) > after {
		pos.HeadLen, pos.HeadHash = 0, 0 // the hash is of more bytes than the line ends at
	}
	l := Line{Source: s.cfg.Name, Origin: t.path, Text: string(text), Key: key, Pos: pos}
	select {
	case out <- l:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// updateHead extends the head hash to the first min(off, 1 KiB) bytes,
// hashing them as they were read (t.head), whatever the file holds now.
func (t *tailer) updateHead() {
	want := int(min(t.off, headMax))
	if want <= t.headLen || want > len(t.head) {
		return
	}
	t.headLen, t.headHash = want, hashHead(t.head[:want])
	if t.headLen == headMax {
		t.head = nil // complete: no more is needed
	}
}

// headAt returns the length and hash of the file's first min(off, 1 KiB)
// bytes, as read, for the position of a line ending at off: every
// line's position carries a hash, also the first lines', so that a
// restart on it notices a truncation and finds the copy. Past the first
// KiB it is the hash updateHead keeps; within it, a hash of at most
// 1 KiB per line.
func (t *tailer) headAt(off int64) (int, uint64) {
	want := int(min(off, headMax))
	switch {
	case want == t.headLen:
		return t.headLen, t.headHash
	case want <= len(t.head):
		return want, hashHead(t.head[:want])
	case t.headLen <= want:
		return t.headLen, t.headHash // the first bytes could not be read
	}
	return 0, 0
}

// loadHead fills t.head for a tailer placed past the start of its file
// without reading it. Done at placement, before any line is handed
// over, so the bytes are those the position was taken in. If the read
// fails, the hash is not extended: a truncation is then noticed by size
// only, and the copy is not looked for by hash.
func (t *tailer) loadHead() {
	n := min(t.readOff, headMax)
	if n == 0 {
		return
	}
	b := make([]byte, n)
	if _, err := t.f.ReadAt(b, 0); err == nil {
		t.head = b
	}
}

// position is what is saved for t.
func (t *tailer) position() Position {
	return Position{Dev: t.id.dev, Ino: t.id.ino, Offset: t.off, HeadLen: t.headLen, HeadHash: t.headHash}
}

// saveAll saves the positions that changed, if SaveInterval has passed
// since their last save or force.
func (s *FileSource) saveAll(force bool) error {
	now := s.now()
	var errs []error
	for p, t := range s.current {
		if !t.dirty || (!force && now.Sub(t.lastSave) < s.cfg.SaveInterval) {
			continue
		}
		if err := s.cfg.Positions.SetPosition(fileKey(s.cfg.Name, p), t.position()); err != nil {
			errs = append(errs, err)
			continue
		}
		t.dirty, t.lastSave = false, now
	}
	return errors.Join(errs...)
}
