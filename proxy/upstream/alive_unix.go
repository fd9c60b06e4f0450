//go:build unix

package upstream

import "syscall"

// alive tells whether an idle connection can carry a request: nothing
// arrived on it while it was idle and the upstream has not closed it.
// One non-blocking peek at the socket, on the caller's goroutine (where
// net/http's Transport keeps a reader goroutine per idle connection).
func (cn *Conn) alive() bool {
	if cn.br.Buffered() > 0 {
		return false
	}
	if cn.raw == nil {
		sc, ok := cn.nc.(syscall.Conn)
		if !ok {
			return true
		}
		raw, err := sc.SyscallConn()
		if err != nil {
			return false
		}
		cn.raw = raw
		cn.peek = func(fd uintptr) bool {
			var b [1]byte
			_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			// EAGAIN: nothing to read, the good case. No error: a
			// byte arrived, or the upstream closed the connection.
			cn.idleOK = err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
			return true
		}
	}
	if err := cn.raw.Read(cn.peek); err != nil {
		return false
	}
	return cn.idleOK
}
