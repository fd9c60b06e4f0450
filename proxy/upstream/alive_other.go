//go:build !unix

package upstream

// alive is the unix build's peek where a socket cannot be peeked at:
// only bytes already buffered are seen.
func (cn *Conn) alive() bool { return cn.br.Buffered() == 0 }
