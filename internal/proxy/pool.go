package proxy

import "sync"

const copyBufferSize = 32 << 10

// bufferPool lends httputil.ReverseProxy its copy buffers, so that a
// request does not allocate (and the collector does not reclaim) 32 KiB
// each time. Safe for concurrent use.
type bufferPool struct{ p sync.Pool }

func newBufferPool() *bufferPool {
	return &bufferPool{p: sync.Pool{New: func() any { return new([copyBufferSize]byte) }}}
}

func (b *bufferPool) Get() []byte { return b.p.Get().(*[copyBufferSize]byte)[:] }

func (b *bufferPool) Put(buf []byte) {
	if cap(buf) == copyBufferSize {
		b.p.Put((*[copyBufferSize]byte)(buf[:copyBufferSize]))
	}
}
