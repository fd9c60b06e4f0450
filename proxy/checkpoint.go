package proxy

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"gatehouse/rules/watch"
)

// The checkpoint is state_dir/offences.state: the jails' counts (which
// clients offended when, and their ban history) and the watch sources'
// read positions, written together, atomically, so that after a restart
// every offence counted before it still counts and no log line is read
// twice. It is written every checkpointInterval when something changed,
// and at shutdown once requests have drained.
const (
	checkpointName     = "offences.state"
	checkpointMagic    = "GHSTATE2"
	checkpointInterval = 5 * time.Second
)

// checkpointPositions holds the watch sources' positions for the
// checkpoint. A line's position (watch.Line.Pos) is taken once the line
// is judged (advance), so the positions saved never run ahead of the
// counts saved with them. Sources also set positions themselves (at a
// tail start, after a rotation or truncation); those are taken only where
// they do not move a file back from a judged line's position.
type checkpointPositions struct {
	mu      sync.Mutex
	pos     map[string]watch.Position
	judged  map[string]bool // keys whose position a judged line set
	version uint64          // bumped on every change
}

func newCheckpointPositions(pos map[string]watch.Position) *checkpointPositions {
	if pos == nil {
		pos = map[string]watch.Position{}
	}
	return &checkpointPositions{pos: pos, judged: map[string]bool{}}
}

// Position implements watch.Positions.
func (c *checkpointPositions) Position(key string) (watch.Position, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.pos[key]
	return p, ok
}

// SetPosition implements watch.Positions: it keeps p in memory for the
// next checkpoint unless a judged line has put the key's file further
// along (the source saves lazily, after lines it handed over), or, for
// the journal, a judged line set the cursor at all.
func (c *checkpointPositions) SetPosition(key string, p watch.Position) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.pos[key]; ok && c.judged[key] {
		if p.Cursor != "" || old.Dev == p.Dev && old.Ino == p.Ino && p.Offset <= old.Offset {
			return nil
		}
	}
	if old, ok := c.pos[key]; !ok || old != p {
		c.pos[key] = p
		c.judged[key] = false
		c.version++
	}
	return nil
}

// advance records that the line ending at p under key was judged.
func (c *checkpointPositions) advance(key string, p watch.Position) {
	if key == "" {
		return
	}
	c.mu.Lock()
	c.pos[key], c.judged[key] = p, true
	c.version++
	c.mu.Unlock()
}

// keep forgets the positions of sources not in names (removed from the
// config), so the checkpoint does not grow with every source ever
// watched; a source added back later starts as a new one.
func (c *checkpointPositions) keep(names map[string]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for key := range c.pos {
		// Keys are "file\x00NAME\x00PATH" and "journal\x00NAME".
		parts := strings.SplitN(key, "\x00", 3)
		if len(parts) < 2 || !names[parts[1]] {
			delete(c.pos, key)
			delete(c.judged, key)
			c.version++
		}
	}
}

func (c *checkpointPositions) snapshot() ([]byte, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, err := json.Marshal(c.pos)
	if err != nil {
		panic(err) // a map of plain structs always marshals
	}
	return b, c.version
}

// loadCheckpoint reads state_dir's checkpoint: the positions, and the
// jails' state for the first generation's jails. A missing file is a
// first start; an unreadable one is logged and set aside (renamed
// .corrupt-TIME), never a reason not to start.
func (s *Server) loadCheckpoint(dir string) map[string]watch.Position {
	path := filepath.Join(dir, checkpointName)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	pos, state, err := parseCheckpoint(data, err)
	if err == nil {
		var n int
		n, err = s.current.Load().jails.RestoreState(state)
		if err == nil {
			s.log.Info("offence counts restored", "path", path, "clients", n, "watch_positions", len(pos))
			return pos
		}
	}
	s.log.Error("offence counts and watch positions not restored; starting without them", "path", path, "error", err)
	// Each one kept, by when it was set aside.
	if err := os.Rename(path, path+".corrupt-"+time.Now().UTC().Format("20060102T150405")); err != nil {
		s.log.Warn("could not set the unreadable checkpoint aside", "path", path, "error", err)
	}
	return nil
}

func parseCheckpoint(data []byte, readErr error) (map[string]watch.Position, []byte, error) {
	if readErr != nil {
		return nil, nil, readErr
	}
	if len(data) < len(checkpointMagic)+4 || string(data[:len(checkpointMagic)]) != checkpointMagic {
		return nil, nil, errors.New("not a gatehouse checkpoint (or a newer version)")
	}
	body, sum := data[:len(data)-4], binary.BigEndian.Uint32(data[len(data)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, nil, errors.New("checksum mismatch: the file was changed or cut")
	}
	data = body[len(checkpointMagic):]
	n, k := binary.Uvarint(data)
	if k <= 0 || n > uint64(len(data)-k) {
		return nil, nil, errors.New("truncated")
	}
	var pos map[string]watch.Position
	if err := json.Unmarshal(data[k:k+int(n)], &pos); err != nil {
		return nil, nil, fmt.Errorf("positions: %w", err)
	}
	return pos, data[k+int(n):], nil
}

// checkpoint writes state_dir's checkpoint if the counts or positions
// changed since the last one, or always with force. It is called by the
// watcher's judging goroutine between two lines, and at shutdown once
// that goroutine and the requests are done.
func (s *Server) checkpoint(force bool) {
	if s.checkpointPath == "" {
		return
	}
	jails := s.current.Load().jails
	pos, version := s.positions.snapshot()
	mark := checkpointMark{positions: version, offences: jails.Total()}
	if !force && mark == s.lastCheckpoint {
		return
	}
	if err := watch.WriteFileAtomic(s.checkpointPath, encodeCheckpoint(pos, func(b []byte) []byte { return jails.AppendState(b, time.Now()) })); err != nil {
		s.log.Error("offence counts not saved", "path", s.checkpointPath, "error", err)
		return
	}
	s.lastCheckpoint = mark
}

// castagnoli is the checkpoint's checksum table (CRC-32C).
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// encodeCheckpoint lays out a checkpoint: the magic, the positions'
// JSON (length first), what state appends, and a CRC-32C of all that.
func encodeCheckpoint(pos []byte, state func([]byte) []byte) []byte {
	buf := append([]byte(checkpointMagic), binary.AppendUvarint(nil, uint64(len(pos)))...)
	buf = state(append(buf, pos...))
	return binary.BigEndian.AppendUint32(buf, crc32.Checksum(buf, castagnoli))
}

// checkpointMark tells whether anything changed since a checkpoint.
type checkpointMark struct {
	positions uint64
	offences  uint64
}

var _ watch.Positions = (*checkpointPositions)(nil)

// restoreCheckpoint is loadCheckpoint for New: positions for the watch
// sources, counts for the first generation's jails.
func (s *Server) restoreCheckpoint(cfgStateDir string) {
	var pos map[string]watch.Position
	if cfgStateDir != "" {
		s.checkpointPath = filepath.Join(cfgStateDir, checkpointName)
		pos = s.loadCheckpoint(cfgStateDir)
	}
	s.positions = newCheckpointPositions(pos)
	s.lastCheckpoint = checkpointMark{offences: s.current.Load().jails.Total()}
}
