// Command pause holds a pod's namespaces open until it is told to stop: the
// sandbox container of every pod on make e2e-node's node (hack/node).
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	<-stop
}
