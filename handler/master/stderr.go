package master

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// logTail is how much of the end of HAProxy's stderr is read for the
// messages of a failed reload: they come last, and are a few lines.
const logTail = 64 << 10

// logWait bounds the wait for the messages to reach the file when a logger
// (s6-log) sits between HAProxy and it.
const logWait = 200 * time.Millisecond

// stderrLog returns the messages the master printed on stderr for its
// last reload, and the file they come from. HAProxy 2.6 keeps them nowhere
// else once a reload failed: the master re-executes itself and starts
// afresh. The file is Client.Log, else the master's stderr if that is a
// regular file.
func (c *Client) stderrLog(ctx context.Context, master int) ([]string, string) {
	file, source := c.Log, c.Log
	if file == "" {
		file = fmt.Sprintf("/proc/%d/fd/2", master)
		fi, err := os.Stat(file)
		if err != nil || !fi.Mode().IsRegular() {
			return nil, ""
		}
		// Read through /proc (the file may have been renamed or removed),
		// but name the file itself to the operator.
		source = file
		if name, err := os.Readlink(file); err == nil {
			source = name
		}
	}
	end := time.Now().Add(logWait)
	for {
		log, complete := reloadMessages(readTail(file), master)
		if complete || time.Now().After(end) || ctx.Err() != nil {
			return log, source
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func readTail(file string) []byte {
	f, err := os.Open(file)
	if err != nil {
		return nil
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > logTail {
		f.Seek(fi.Size()-logTail, io.SeekStart)
	}
	b, _ := io.ReadAll(io.LimitReader(f, logTail))
	return b
}

// reloadMessages picks out of HAProxy's stderr the master's messages after
// its last "Reloading HAProxy", such as
//
//	[NOTICE]   (7822) : Reloading HAProxy
//	[WARNING]  (7835) : Paused frontend fe.
//	[ALERT]    (7822) : Binding [cur.cfg:10] for frontend fe: cannot bind socket (Cannot assign requested address) for [192.0.2.77:80]
//	[WARNING]  (7822) : Loading failure!
//
// Lines may carry a logger's prefix (an s6-log timestamp), which is cut.
// complete reports that the attempt's last message ("Loading failure!" or
// "Loading success.") is there.
func reloadMessages(b []byte, master int) (log []string, complete bool) {
	tag := fmt.Sprintf("(%d) : ", master)
	lines := strings.Split(string(b), "\n")
	from := -1
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], tag+"Reloading HAProxy") {
			from = i + 1
			break
		}
	}
	if from < 0 {
		return nil, false
	}
	for _, l := range lines[from:] {
		i := strings.Index(l, tag)
		if i < 0 {
			continue
		}
		if j := strings.LastIndexByte(l[:i], '['); j >= 0 {
			l = l[j:]
		}
		l = strings.TrimRight(l, " \r")
		log = append(log, l)
		if strings.HasSuffix(l, "Loading failure!") || strings.HasSuffix(l, "Loading success.") {
			complete = true
		}
	}
	return log, complete
}
