//go:build linux

package firewall

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// autoProbeTimeout bounds the kernel probes of "auto".
const autoProbeTimeout = 10 * time.Second

// New returns the backend cfg.Backend names. For "ipset" and "iptables"
// it finds the tools (an error wrapping ErrUnavailable when one is
// missing) without touching the kernel; for "nftables" it does nothing
// that can fail but a bad NetNS. For "auto" it asks the kernel: nftables
// if nf_tables answers, else ipset if the ipset tools work, else an error
// wrapping ErrUnavailable (and ErrNoPermission too when the probes were
// refused for lack of privilege). It logs the choice. "none" and any
// other name are errors: with "none" the caller runs no Reconciler.
func New(cfg Config) (Backend, error) {
	ports, err := validPorts(cfg.Ports)
	if err != nil {
		return nil, err
	}
	log := discard(cfg.Log).With("component", "firewall")
	cfg.Log = log
	switch cfg.Backend {
	case "ipset":
		return newIPSet(cfg, ports)
	case "nftables":
		return newNFTables(cfg, ports)
	case "iptables":
		return newIPTables(cfg, ports)
	case "auto":
		ctx, cancel := context.WithTimeout(context.Background(), autoProbeTimeout)
		defer cancel()
		nft, err := newNFTables(cfg, ports)
		if err != nil {
			return nil, err
		}
		nftErr := nft.usable(ctx)
		if nftErr == nil {
			log.Info("firewall backend chosen", "backend", "nftables", "config", "auto")
			return nft, nil
		}
		ips, ipsErr := newIPSet(cfg, ports)
		if ipsErr == nil {
			ipsErr = ips.usable(ctx)
		}
		if ipsErr == nil {
			log.Info("firewall backend chosen", "backend", "ipset", "config", "auto", "nftables_err", nftErr.Error())
			return ips, nil
		}
		err = fmt.Errorf("firewall backend auto: nftables: %w; ipset: %w", nftErr, ipsErr)
		if !errors.Is(err, ErrUnavailable) {
			err = fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return nil, err
	case "none":
		return nil, fmt.Errorf("firewall backend none: no backend to build; run no reconciler instead")
	}
	return nil, fmt.Errorf("firewall backend %q is not one of ipset, nftables, iptables, auto", cfg.Backend)
}
