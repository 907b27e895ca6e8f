package tokendir

import "github.com/fsnotify/fsnotify"

// pump drains a watcher's channels on a goroutine of its own, so that the
// watcher never waits on Run. fsnotify holds its lock while it reports
// some errors (a watched directory moved away and removed), and Run's
// rewatch calls Add, which takes that lock: were Run the reader, each
// would wait on the other for good. Events that concern the outputs, and
// every error (events may have been lost), become one pending signal on
// kick; done is closed once the watcher's channels are.
type pump struct {
	w    *fsnotify.Watcher
	kick chan struct{}
	done chan struct{}
}

// startPump starts draining w; concerns filters its events by name.
func startPump(w *fsnotify.Watcher, concerns func(name string) bool) *pump {
	p := &pump{w: w, kick: make(chan struct{}, 1), done: make(chan struct{})}
	go p.run(concerns)
	return p
}

func (p *pump) run(concerns func(string) bool) {
	defer close(p.done)
	for {
		select {
		case ev, ok := <-p.w.Events:
			if !ok {
				return
			}
			if !concerns(ev.Name) {
				continue
			}
		case _, ok := <-p.w.Errors:
			if !ok {
				return
			}
		}
		select {
		case p.kick <- struct{}{}:
		default: // a check is pending already
		}
	}
}

// stop closes the watcher and returns once the pump has ended. A nil pump
// is stopped already.
func (p *pump) stop() {
	if p == nil {
		return
	}
	p.w.Close()
	<-p.done
}
