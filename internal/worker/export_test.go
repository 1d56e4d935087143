package worker

// SetBeforeFinish makes w call f when one of its partitions is released,
// just before it applies what was delivered while its pull drained. Call
// it before Start.
func SetBeforeFinish(w *Worker, f func(partition int)) { w.hooks.beforeFinish = f }
