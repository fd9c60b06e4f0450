package proxy

import (
	"errors"
	"runtime/debug"
)

// releaseStartupMemory gives back what building the first generation
// used and serving does not need: the heap garbage of decoding the
// config and compiling its matchers, returned to the kernel at once
// rather than by the scavenger over minutes, and the pages of the
// executable that start-up touched (see dropExecutablePages). Serving
// touches again only what it runs. It runs once, when Run is ready.
func (s *Server) releaseStartupMemory() {
	debug.FreeOSMemory()
	if err := dropExecutablePages(); err != nil && !errors.Is(err, errors.ErrUnsupported) {
		s.log.Debug("start-up pages of the executable kept", "error", err)
	}
}
