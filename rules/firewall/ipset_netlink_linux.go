//go:build linux

package firewall

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// This file speaks the ipset netlink protocol (NFNL_SUBSYS_IPSET of
// nfnetlink, include/uapi/linux/netfilter/ipset/ip_set.h in the kernel;
// libipset is its other client) on one persistent socket, in place of
// one `ipset` process per operation.

// ipset commands, attributes and flags, as ip_set.h numbers them.
const (
	// ipsetProtocol is the protocol version sent: IPSET_PROTOCOL_MIN,
	// which every kernel since 3.x accepts (version 7 adds nothing
	// gatehouse uses).
	ipsetProtocol = 6

	ipsetCmdProtocol = 1
	ipsetCmdCreate   = 2
	ipsetCmdDestroy  = 3
	ipsetCmdSwap     = 6
	ipsetCmdList     = 7
	ipsetCmdAdd      = 9
	ipsetCmdDel      = 10
	ipsetCmdType     = 13

	// Attributes of a command.
	ipsetAttrProtocol = 1
	ipsetAttrSetName  = 2
	ipsetAttrTypeName = 3
	ipsetAttrSetName2 = ipsetAttrTypeName // the second set of a swap
	ipsetAttrRevision = 4
	ipsetAttrFamily   = 5
	ipsetAttrFlags    = 6
	ipsetAttrData     = 7
	ipsetAttrADT      = 8

	// Attributes inside IPSET_ATTR_DATA (an element, or a set's
	// header).
	ipsetAttrIP        = 1
	ipsetAttrCIDR      = 3
	ipsetAttrTimeout   = 6
	ipsetAttrCADTFlags = 8
	ipsetAttrHashSize  = 18
	ipsetAttrMaxElem   = 19
	ipsetAttrElements  = 24

	// Attributes inside IPSET_ATTR_IP.
	ipsetAttrIPv4 = 1
	ipsetAttrIPv6 = 2

	// ipsetFlagListHeader asks a list for the header only.
	ipsetFlagListHeader = 1 << 2

	// IPSET_ERR_* codes the kernel answers beside the errnos.
	ipsetErrPrivate     = 4096
	ipsetErrTypeSpecial = 4352

	// ipsetHashNetRevision is the newest revision of hash:net that
	// gatehouse asks for (7: bucket size and initval): the ipset tool of
	// the same years lists it, and a newer kernel still makes it.
	ipsetHashNetRevision = 7

	nlaFNested    = 1 << 15
	nlaFNetOrder  = 1 << 14
	nlaTypeMask   = ^uint16(nlaFNested | nlaFNetOrder)
	nfgenHdrLen   = 4
	nlmsgHdrLen   = unix.SizeofNlMsghdr
	ipsetMsgFirst = unix.NFNL_SUBSYS_IPSET << 8
)

// ipsetErrnoText names the ipset-specific error codes, as libipset
// prints them.
var ipsetErrnoText = map[int]string{
	ipsetErrPrivate + 0:     "private error",
	ipsetErrPrivate + 1:     "kernel and gatehouse ipset protocols are incompatible",
	ipsetErrPrivate + 2:     "kernel has no such set type",
	ipsetErrPrivate + 3:     "maximal number of sets reached",
	ipsetErrPrivate + 4:     "set is in use (busy)",
	ipsetErrPrivate + 5:     "second set does not exist",
	ipsetErrPrivate + 6:     "set types do not match",
	ipsetErrPrivate + 7:     "element or set already exists (or is absent)",
	ipsetErrPrivate + 8:     "invalid CIDR",
	ipsetErrPrivate + 9:     "invalid netmask",
	ipsetErrPrivate + 10:    "invalid family",
	ipsetErrPrivate + 11:    "timeout not supported by the set",
	ipsetErrPrivate + 12:    "set is referenced by a rule",
	ipsetErrPrivate + 13:    "invalid IPv4 address",
	ipsetErrPrivate + 14:    "invalid IPv6 address",
	ipsetErrTypeSpecial + 0: "hash is full",
	ipsetErrTypeSpecial + 1: "null-valued element",
}

// ipsetErrno is an error code in a netlink error reply of ipset: an
// errno, or one of ipset's own codes (4096 and up).
type ipsetErrno int

func (e ipsetErrno) Error() string {
	if t, ok := ipsetErrnoText[int(e)]; ok {
		return t
	}
	if e < ipsetErrPrivate {
		return syscall.Errno(e).Error()
	}
	return fmt.Sprintf("ipset error %d", int(e))
}

// Is makes an errno reply match its syscall.Errno, so that EPERM is
// os.ErrPermission and ENOENT os.ErrNotExist.
func (e ipsetErrno) Is(target error) bool {
	if e >= ipsetErrPrivate {
		return false
	}
	return syscall.Errno(e).Is(target) || target == syscall.Errno(e)
}

// ipsetBusy is the refusal of destroying a set a rule references.
const ipsetBusy = ipsetErrno(ipsetErrPrivate + 4)

// ipsetSock is a NETLINK_NETFILTER socket in the backend's namespace,
// opened on first use and kept. A failure of the socket itself (not an
// error the kernel answers) closes it; the next operation opens a new
// one. Safe for concurrent use: operations take turns.
type ipsetSock struct {
	netns string

	mu   sync.Mutex
	nl   *netlink.Conn // nil: closed
	raw  syscall.RawConn
	seq  uint32
	rbuf []byte
	sbuf []byte
	smax int // bytes one sendmsg may carry
}

// Netlink socket buffers of the ipset socket. The send buffer bounds a
// batch; the receive buffer holds the error replies of a batch (with
// NETLINK_CAP_ACK each is the header of the failed message).
const (
	ipsetSndBuf   = 4 << 20
	ipsetRcvBuf   = 16 << 20
	ipsetBatchMax = 1 << 20 // bytes of messages per sendmsg
	ipsetRecvBuf  = 64 << 10
)

func (s *ipsetSock) opError(op, object string, err error) *OpError {
	return newOpError("ipset", op, object, "", err)
}

// open opens the socket in the namespace.
func (s *ipsetSock) open() error {
	var cfg netlink.Config
	if s.netns != "" {
		f, err := os.Open(filepath.Join("/run/netns", s.netns))
		if err != nil {
			return s.opError("open namespace", s.netns, err)
		}
		defer f.Close()
		cfg.NetNS = int(f.Fd())
	}
	nl, err := netlink.Dial(unix.NETLINK_NETFILTER, &cfg)
	if err != nil {
		return s.opError("open netlink", "", err)
	}
	raw, err := nl.SyscallConn()
	if err != nil {
		nl.Close()
		return s.opError("open netlink", "", err)
	}
	snd := 0
	if err := raw.Control(func(fd uintptr) {
		// FORCE passes net.core.[rw]mem_max with CAP_NET_ADMIN; without
		// it the plain options do what they can, and batches are cut to
		// the send buffer there is.
		for _, o := range [][3]int{{unix.SO_SNDBUFFORCE, unix.SO_SNDBUF, ipsetSndBuf}, {unix.SO_RCVBUFFORCE, unix.SO_RCVBUF, ipsetRcvBuf}} {
			if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o[0], o[2]) != nil {
				_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o[1], o[2])
			}
		}
		// Error replies carry the failed message's header only.
		_ = unix.SetsockoptInt(int(fd), unix.SOL_NETLINK, unix.NETLINK_CAP_ACK, 1)
		snd, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF)
	}); err != nil {
		nl.Close()
		return s.opError("open netlink", "", err)
	}
	s.nl, s.raw = nl, raw
	// The kernel refuses a message longer than the send buffer less 32
	// bytes (netlink_sendmsg).
	s.smax = min(ipsetBatchMax, max(snd-1024, 4096))
	if s.rbuf == nil {
		s.rbuf = make([]byte, ipsetRecvBuf)
	}
	return nil
}

// closeLocked drops the socket; the next operation opens a new one.
func (s *ipsetSock) closeLocked() {
	if s.nl != nil {
		_ = s.nl.Close() // a socket given up on: its errors tell nothing more
		s.nl, s.raw = nil, nil
	}
}

// sockError marks a failure of the socket (as opposed to an error reply
// of the kernel): the operation is tried once more on a new socket.
type sockError struct{ err error }

func (e sockError) Error() string { return e.err.Error() }
func (e sockError) Unwrap() error { return e.err }

// do runs op on the open socket, with ctx's deadline and cancellation
// applied to it. When the socket fails, do closes it and, unless ctx is
// done, runs op once more on a new one: every ipset operation gatehouse
// makes is idempotent. An EAGAIN answer (nfnetlink has just loaded the
// ip_set module for the first request) is retried too.
func (s *ipsetSock) do(ctx context.Context, what string, op func() error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if err = ctx.Err(); err != nil {
			return s.opError(what, "", err)
		}
		if s.nl == nil {
			if err = s.open(); err != nil {
				return err
			}
		}
		nl := s.nl
		dl, _ := ctx.Deadline()
		if err = nl.SetDeadline(dl); err != nil {
			s.closeLocked()
			continue
		}
		stop := context.AfterFunc(ctx, func() {
			// Wakes a blocked send or receive; the operation then fails.
			_ = nl.SetDeadline(time.Unix(1, 0))
		})
		err = op()
		if !stop() || ctx.Err() != nil {
			// The deadline may have cut a reply in two.
			s.closeLocked()
			if err == nil {
				return nil
			}
			return s.opError(what, "", errors.Join(err, ctx.Err()))
		}
		if errors.Is(err, syscall.EAGAIN) {
			continue
		}
		var se sockError
		if !errors.As(err, &se) {
			return err
		}
		s.closeLocked()
	}
	return s.opError(what, "", err)
}

// nextSeq returns the sequence number of the next message.
func (s *ipsetSock) nextSeq() uint32 {
	s.seq++
	if s.seq == 0 {
		s.seq = 1
	}
	return s.seq
}

func (s *ipsetSock) send(b []byte) error {
	var serr error
	if err := s.raw.Write(func(fd uintptr) bool {
		serr = unix.Sendto(int(fd), b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		return serr != unix.EAGAIN
	}); err != nil {
		return sockError{err}
	}
	if serr != nil {
		return sockError{serr}
	}
	return nil
}

// recv reads one datagram of netlink messages into s.rbuf.
func (s *ipsetSock) recv() ([]byte, error) {
	var (
		n, flags int
		rerr     error
	)
	if err := s.raw.Read(func(fd uintptr) bool {
		n, _, flags, _, rerr = unix.Recvmsg(int(fd), s.rbuf, nil, 0)
		return rerr != unix.EAGAIN
	}); err != nil {
		return nil, sockError{err}
	}
	if rerr != nil {
		// ENOBUFS: replies were lost; the socket's state is unknown.
		return nil, sockError{rerr}
	}
	if flags&unix.MSG_TRUNC != 0 {
		return nil, sockError{errors.New("netlink reply larger than the receive buffer")}
	}
	return s.rbuf[:n], nil
}

// eachMsg calls fn for each netlink message in b.
func eachMsg(b []byte, fn func(typ, flags uint16, seq uint32, payload []byte) (done bool, err error)) (bool, error) {
	for len(b) >= nlmsgHdrLen {
		l := int(binary.NativeEndian.Uint32(b))
		if l < nlmsgHdrLen || l > len(b) {
			return false, sockError{fmt.Errorf("netlink message of %d bytes in %d", l, len(b))}
		}
		typ := binary.NativeEndian.Uint16(b[4:])
		flags := binary.NativeEndian.Uint16(b[6:])
		seq := binary.NativeEndian.Uint32(b[8:])
		done, err := fn(typ, flags, seq, b[nlmsgHdrLen:l])
		if done || err != nil {
			return done, err
		}
		b = b[min(len(b), nlmsgAlign(l)):]
	}
	return false, nil
}

func nlmsgAlign(n int) int { return (n + 3) &^ 3 }

// errnoOf reads the error of an NLMSG_ERROR payload: 0 for an ack.
func errnoOf(payload []byte) (int, error) {
	if len(payload) < 4 {
		return 0, sockError{errors.New("short netlink error message")}
	}
	return -int(int32(binary.NativeEndian.Uint32(payload))), nil
}

// request sends one message (built by the caller with NLM_F_ACK) and
// reads until its ack, passing the data replies to reply (nil: none
// expected). An error reply is returned as an ipsetErrno.
func (s *ipsetSock) request(msg []byte, seq uint32, reply func(payload []byte) error) error {
	return s.exchange(msg, seq, false, reply)
}

// dump sends a dump request and passes each data message's attributes to
// fn until the dump is done. An error reply is an ipsetErrno.
func (s *ipsetSock) dump(msg []byte, seq uint32, fn func(attrs []byte) error) error {
	return s.exchange(msg, seq, true, fn)
}

// exchange sends msg and reads the replies of sequence seq, passing
// their attributes to fn (nil: none expected), until the ack (a request)
// or NLMSG_DONE (a dump, whose acks do not end it).
func (s *ipsetSock) exchange(msg []byte, seq uint32, dump bool, fn func(attrs []byte) error) error {
	if err := s.send(msg); err != nil {
		return err
	}
	for {
		b, err := s.recv()
		if err != nil {
			return err
		}
		done, err := eachMsg(b, func(typ, _ uint16, mseq uint32, payload []byte) (bool, error) {
			if mseq != seq {
				return false, nil // a stale reply
			}
			switch {
			case typ == unix.NLMSG_DONE:
				if len(payload) >= 4 {
					if errno, _ := errnoOf(payload); errno > 0 {
						return true, ipsetErrno(errno)
					}
				}
				return true, nil
			case typ == unix.NLMSG_ERROR:
				errno, err := errnoOf(payload)
				if err != nil {
					return true, err
				}
				if errno != 0 {
					return true, ipsetErrno(errno)
				}
				return !dump, nil
			case typ>>8 == unix.NFNL_SUBSYS_IPSET && fn != nil && len(payload) >= nfgenHdrLen:
				return false, fn(payload[nfgenHdrLen:])
			}
			return false, nil
		})
		if done || err != nil {
			return err
		}
	}
}

// nlWriter builds netlink messages with ipset attributes in one buffer.
type nlWriter struct{ b []byte }

// begin starts a message of the ipset command cmd and returns its
// offset, for end.
func (w *nlWriter) begin(cmd uint16, flags uint16, seq uint32) int {
	off := len(w.b)
	w.b = binary.NativeEndian.AppendUint32(w.b, 0) // length, set by end
	w.b = binary.NativeEndian.AppendUint16(w.b, ipsetMsgFirst|cmd)
	w.b = binary.NativeEndian.AppendUint16(w.b, flags)
	w.b = binary.NativeEndian.AppendUint32(w.b, seq)
	w.b = binary.NativeEndian.AppendUint32(w.b, 0) // port id: the kernel's
	// nfgenmsg: family (ipset takes it from IPSET_ATTR_FAMILY), version,
	// resource id.
	w.b = append(w.b, unix.NFPROTO_IPV4, unix.NFNETLINK_V0, 0, 0)
	w.u8(ipsetAttrProtocol, ipsetProtocol)
	return off
}

func (w *nlWriter) end(off int) {
	binary.NativeEndian.PutUint32(w.b[off:], uint32(len(w.b)-off))
}

func (w *nlWriter) attr(typ uint16, data ...byte) {
	w.b = binary.NativeEndian.AppendUint16(w.b, uint16(4+len(data)))
	w.b = binary.NativeEndian.AppendUint16(w.b, typ)
	w.b = append(w.b, data...)
	for len(w.b)%4 != 0 {
		w.b = append(w.b, 0)
	}
}

func (w *nlWriter) u8(typ uint16, v uint8) { w.attr(typ, v) }

// be32 writes a 32-bit number in network byte order, flagged so: ipset
// refuses its numbers without the flag.
func (w *nlWriter) be32(typ uint16, v uint32) {
	w.attr(typ|nlaFNetOrder, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// str writes a NUL-terminated string.
func (w *nlWriter) str(typ uint16, s string) {
	w.b = binary.NativeEndian.AppendUint16(w.b, uint16(4+len(s)+1))
	w.b = binary.NativeEndian.AppendUint16(w.b, typ)
	w.b = append(w.b, s...)
	w.b = append(w.b, 0)
	for len(w.b)%4 != 0 {
		w.b = append(w.b, 0)
	}
}

// nest opens a nested attribute and returns its offset, for unnest.
func (w *nlWriter) nest(typ uint16) int {
	off := len(w.b)
	w.b = binary.NativeEndian.AppendUint16(w.b, 0)
	w.b = binary.NativeEndian.AppendUint16(w.b, typ|nlaFNested)
	return off
}

func (w *nlWriter) unnest(off int) {
	binary.NativeEndian.PutUint16(w.b[off:], uint16(len(w.b)-off))
}

// addr writes IPSET_ATTR_IP holding a (4 or 16 bytes, network order).
func (w *nlWriter) addr(a netip.Addr) {
	n := w.nest(ipsetAttrIP)
	if a.Is4() {
		v := a.As4()
		w.attr(ipsetAttrIPv4|nlaFNetOrder, v[:]...)
	} else {
		v := a.As16()
		w.attr(ipsetAttrIPv6|nlaFNetOrder, v[:]...)
	}
	w.unnest(n)
}

// element writes IPSET_ATTR_DATA of a hash:net element: the prefix and,
// when timeout is not negative, its timeout in seconds.
func (w *nlWriter) element(p netip.Prefix, timeout int64) {
	d := w.nest(ipsetAttrData)
	w.addr(p.Addr())
	w.u8(ipsetAttrCIDR, uint8(p.Bits()))
	if timeout >= 0 {
		w.be32(ipsetAttrTimeout, uint32(timeout))
	}
	w.unnest(d)
}

// nextAttr splits the first attribute off b. ok is false at the end of
// b or on a malformed attribute.
func nextAttr(b []byte) (typ uint16, val, rest []byte, ok bool) {
	if len(b) < 4 {
		return 0, nil, nil, false
	}
	l := int(binary.NativeEndian.Uint16(b))
	if l < 4 || l > len(b) {
		return 0, nil, nil, false
	}
	typ = binary.NativeEndian.Uint16(b[2:]) & nlaTypeMask
	val = b[4:l]
	rest = b[min(len(b), (l+3)&^3):]
	return typ, val, rest, true
}

// ipsetListMsg is what one message of a list dump says about its set.
type ipsetListMsg struct {
	name    string
	typ     string // only in the first message of a set
	family  uint8  // NFPROTO_IPV4 or NFPROTO_IPV6
	header  bool   // the message has the set's header (IPSET_ATTR_DATA)
	timeout bool   // the header says the set has timeouts
	maxelem uint32
	elems   uint32 // the header's count of entries (kernels since 4.x)
	adt     []byte // the elements (IPSET_ATTR_ADT's contents); nil for none
}

// errIPSetMalformed is the error of a list message that does not parse.
var errIPSetMalformed = errors.New("malformed ipset list message")

// parseIPSetList reads the attributes of one message of a list dump.
func parseIPSetList(attrs []byte) (ipsetListMsg, error) {
	var m ipsetListMsg
	for len(attrs) > 0 {
		typ, val, rest, ok := nextAttr(attrs)
		if !ok {
			return m, errIPSetMalformed
		}
		attrs = rest
		switch typ {
		case ipsetAttrSetName:
			m.name = cString(val)
		case ipsetAttrTypeName:
			m.typ = cString(val)
		case ipsetAttrFamily:
			if len(val) < 1 {
				return m, errIPSetMalformed
			}
			m.family = val[0]
		case ipsetAttrData:
			m.header = true
			for len(val) > 0 {
				t, v, r, ok := nextAttr(val)
				if !ok {
					return m, errIPSetMalformed
				}
				val = r
				switch t {
				case ipsetAttrTimeout:
					m.timeout = true
				case ipsetAttrMaxElem:
					if len(v) != 4 {
						return m, errIPSetMalformed
					}
					m.maxelem = binary.BigEndian.Uint32(v)
				case ipsetAttrElements:
					if len(v) != 4 {
						return m, errIPSetMalformed
					}
					m.elems = binary.BigEndian.Uint32(v)
				}
			}
		case ipsetAttrADT:
			m.adt = val
		}
	}
	return m, nil
}

func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// ipsetElem is one element of a hash:net list.
type ipsetElem struct {
	prefix  netip.Prefix
	timeout uint32 // seconds left; 0: none, or the set has no timeouts
	nomatch bool   // an exception entry (`nomatch`), not a member
}

// eachIPSetElem calls fn for each element of adt (IPSET_ATTR_ADT's
// contents, from a list). Elements must be hash:net ones: an address
// and a prefix length; the address's family decides the prefix's.
func eachIPSetElem(adt []byte, fn func(ipsetElem)) error {
	for len(adt) > 0 {
		typ, data, rest, ok := nextAttr(adt)
		if !ok {
			return errIPSetMalformed
		}
		adt = rest
		if typ != ipsetAttrData {
			continue
		}
		var (
			e    ipsetElem
			addr netip.Addr
			bits = -1
		)
		for len(data) > 0 {
			t, v, r, ok := nextAttr(data)
			if !ok {
				return errIPSetMalformed
			}
			data = r
			switch t {
			case ipsetAttrIP:
				at, av, _, ok := nextAttr(v)
				if !ok {
					return errIPSetMalformed
				}
				switch {
				case at == ipsetAttrIPv4 && len(av) == 4:
					addr = netip.AddrFrom4([4]byte(av))
				case at == ipsetAttrIPv6 && len(av) == 16:
					addr = netip.AddrFrom16([16]byte(av))
				default:
					return errIPSetMalformed
				}
			case ipsetAttrCIDR:
				if len(v) < 1 {
					return errIPSetMalformed
				}
				bits = int(v[0])
			case ipsetAttrTimeout:
				if len(v) != 4 {
					return errIPSetMalformed
				}
				e.timeout = binary.BigEndian.Uint32(v)
			case ipsetAttrCADTFlags:
				if len(v) != 4 {
					return errIPSetMalformed
				}
				e.nomatch = binary.BigEndian.Uint32(v)&(1<<2) != 0 // IPSET_FLAG_NOMATCH
			}
		}
		if !addr.IsValid() {
			return errIPSetMalformed
		}
		if bits < 0 {
			bits = addr.BitLen()
		}
		p, err := addr.Prefix(bits)
		if err != nil || bits == 0 {
			return errIPSetMalformed
		}
		e.prefix = p
		fn(e)
	}
	return nil
}
