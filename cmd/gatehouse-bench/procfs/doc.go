// Package procfs reads what gatehouse-bench measures from Linux's /proc
// (proc(5)): a process's state, parent and CPU clock ticks
// (ParseStat, ReadStat), its tree of descendants (Tree, TreeTicks), its
// resident memory (VMRSS, TreeRSS) and the busy ticks of chosen cores
// (CoreTicks). Every function reads /proc afresh and holds no state.
package procfs
