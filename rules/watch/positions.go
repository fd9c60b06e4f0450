package watch

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// PositionFile is a Positions kept in one JSON file, normally
// watch-positions.json in state_dir. Every SetPosition rewrites the file
// atomically (write a temporary file beside it, fsync, rename, fsync the
// directory), so the file is always either the old or the new version.
// The file is small (one record per watched file or journal) and written
// at most once per SaveInterval per source. Safe for concurrent use.
type PositionFile struct {
	path string

	mu  sync.Mutex
	pos map[string]Position
}

// positionFileVersion is the "version" field of the file; a newer one is
// refused rather than overwritten.
const positionFileVersion = 1

type positionFileJSON struct {
	Version   int                 `json:"version"`
	Positions map[string]Position `json:"positions"`
}

// OpenPositionFile reads path, or starts empty if it does not exist.
// Its directory must exist.
func OpenPositionFile(path string) (*PositionFile, error) {
	pf := &PositionFile{path: path, pos: map[string]Position{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return pf, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read watch positions: %w", err)
	}
	var f positionFileJSON
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("read watch positions %s: %w", path, err)
	}
	if f.Version != positionFileVersion {
		return nil, fmt.Errorf("read watch positions %s: version %d, want %d", path, f.Version, positionFileVersion)
	}
	if f.Positions != nil {
		pf.pos = f.Positions
	}
	return pf, nil
}

// Position returns the saved position of key.
func (pf *PositionFile) Position(key string) (Position, bool) {
	pf.mu.Lock()
	defer pf.mu.Unlock()
	p, ok := pf.pos[key]
	return p, ok
}

// SetPosition saves p for key and writes the file before it returns. On
// error the position is kept in memory and written with the next save.
func (pf *PositionFile) SetPosition(key string, p Position) error {
	pf.mu.Lock()
	defer pf.mu.Unlock()
	if old, ok := pf.pos[key]; ok && old == p {
		return nil
	}
	pf.pos[key] = p
	b, err := json.Marshal(positionFileJSON{Version: positionFileVersion, Positions: pf.pos})
	if err != nil {
		return fmt.Errorf("save watch positions: %w", err)
	}
	if err := WriteFileAtomic(pf.path, b); err != nil {
		return fmt.Errorf("save watch positions: %w", err)
	}
	return nil
}

// WriteFileAtomic replaces path with b: a temporary file beside it,
// synced, renamed over it, and the directory synced, so that path holds
// the old or the new content, also after a crash. Errors name the file.
func WriteFileAtomic(path string, b []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(name, path)
	}
	if err != nil {
		_ = os.Remove(name) // best effort: err is what matters
		return fmt.Errorf("write %s: %w", path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// memPositions keeps positions in memory only: a source without
// Positions.
type memPositions struct {
	mu  sync.Mutex
	pos map[string]Position
}

func newMemPositions() *memPositions { return &memPositions{pos: map[string]Position{}} }

func (m *memPositions) Position(key string) (Position, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.pos[key]
	return p, ok
}

func (m *memPositions) SetPosition(key string, p Position) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pos[key] = p
	return nil
}
