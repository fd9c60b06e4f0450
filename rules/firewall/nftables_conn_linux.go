//go:build linux

package firewall

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// This file holds the netlink plumbing of the nftables backend: one
// connection per operation, in the namespace, bounded by ctx, and the
// ruleset generation List caches its dump against.

// conn opens a netlink connection for one operation, in the namespace if
// one is set, with ctx's deadline and cancellation applied to it. done
// closes it.
func (b *nftBackend) conn(ctx context.Context) (c *nftables.Conn, done func(), err error) {
	c, _, done, err = b.connWithSocket(ctx)
	return c, done, err
}

// connWithSocket is conn that also returns the netlink socket, which List
// needs to read the ruleset generation.
func (b *nftBackend) connWithSocket(ctx context.Context) (c *nftables.Conn, nl *netlink.Conn, done func(), err error) {
	return b.connBuf(ctx, nftSockBuf)
}

// connBuf is connWithSocket with socket buffers of buf bytes: a feed's
// replacement is one batch of up to MaxFeedPrefixes prefixes.
func (b *nftBackend) connBuf(ctx context.Context, buf int) (c *nftables.Conn, nl *netlink.Conn, done func(), err error) {
	opts := []nftables.ConnOption{
		nftables.AsLasting(),
		nftables.WithSockOptions(func(conn *netlink.Conn) error {
			nl = conn
			if dl, ok := ctx.Deadline(); ok {
				if err := conn.SetDeadline(dl); err != nil {
					return err
				}
			}
			raw, err := conn.SyscallConn()
			if err != nil {
				return err
			}
			return raw.Control(func(fd uintptr) {
				// FORCE passes net.core.[rw]mem_max with CAP_NET_ADMIN;
				// without it the plain options do what they can. Errors
				// only mean smaller buffers: big batches then fail and
				// are retried in pieces.
				for _, o := range [][2]int{{unix.SO_SNDBUFFORCE, unix.SO_SNDBUF}, {unix.SO_RCVBUFFORCE, unix.SO_RCVBUF}} {
					if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o[0], buf) != nil {
						_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o[1], buf)
					}
				}
			})
		}),
	}
	if b.netns != "" {
		f, err := os.Open(filepath.Join("/run/netns", b.netns))
		if err != nil {
			return nil, nil, nil, b.opError("open namespace", b.netns, err)
		}
		defer f.Close()
		opts = append(opts, nftables.WithNetNSFd(int(f.Fd())))
	}
	c, err = nftables.New(opts...)
	if err != nil {
		return nil, nil, nil, b.opError("open netlink", "", err)
	}
	stop := context.AfterFunc(ctx, func() {
		// Wakes a blocked send or receive; the operation then fails.
		_ = nl.SetDeadline(time.Unix(1, 0))
	})
	return c, nl, func() {
		stop()
		_ = c.CloseLasting() // nothing is pending: every call has returned
	}, nil
}

// generation returns the nf_tables ruleset generation, which every
// committed change of the namespace's ruleset (by anyone) increments;
// expiring elements do not. It asks with a raw request and reads the
// answer with a 32 KiB buffer, which has a second use: the kernel sizes
// netlink dump messages by the largest buffer the socket was read with,
// which mdlayher/netlink starts at a page, and it walks an interval set
// from its start again for every message of a dump. With 32 KiB messages
// instead of 4 KiB, listing 100,000 entries costs a third of the time.
func generation(nl *netlink.Conn) (uint32, error) {
	raw, err := nl.SyscallConn()
	if err != nil {
		return 0, err
	}
	const hdr = unix.SizeofNlMsghdr + 4 // nlmsghdr, nfgenmsg
	req := make([]byte, hdr)
	binary.NativeEndian.PutUint32(req[0:], hdr)
	binary.NativeEndian.PutUint16(req[4:], unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_GETGEN)
	binary.NativeEndian.PutUint16(req[6:], unix.NLM_F_REQUEST)
	req[unix.SizeofNlMsghdr+1] = unix.NFNETLINK_V0
	var serr error
	if err := raw.Write(func(fd uintptr) bool {
		serr = unix.Sendto(int(fd), req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		return serr != unix.EAGAIN
	}); err != nil {
		return 0, err
	}
	if serr != nil {
		return 0, serr
	}
	buf := make([]byte, 32<<10)
	var n int
	if err := raw.Read(func(fd uintptr) bool {
		n, _, _, _, serr = unix.Recvmsg(int(fd), buf, nil, 0)
		return serr != unix.EAGAIN
	}); err != nil {
		return 0, err
	}
	if serr != nil {
		return 0, serr
	}
	msgs, err := syscall.ParseNetlinkMessage(buf[:n])
	if err != nil {
		return 0, err
	}
	for _, m := range msgs {
		switch {
		case m.Header.Type == unix.NLMSG_ERROR && len(m.Data) >= 4:
			if errno := int32(binary.NativeEndian.Uint32(m.Data)); errno != 0 {
				return 0, syscall.Errno(-errno)
			}
		case m.Header.Type == unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_NEWGEN && len(m.Data) >= 4:
			ad, err := netlink.NewAttributeDecoder(m.Data[4:])
			if err != nil {
				return 0, err
			}
			ad.ByteOrder = binary.BigEndian
			for ad.Next() {
				if ad.Type() == unix.NFTA_GEN_ID {
					return ad.Uint32(), nil
				}
			}
		}
	}
	return 0, errors.New("no generation in the answer")
}
