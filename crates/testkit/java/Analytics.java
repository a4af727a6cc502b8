// Incident 000 in miniature: every "request" builds a client whose thread pool is never
// shut down, so one "Analytics-N" thread per request lives forever.
//   java Analytics N        start N leaked threads, print "ready", wait for stdin EOF
//   java Analytics N MS     then leak one more every MS milliseconds
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;

public class Analytics {
    static final AtomicInteger NEXT = new AtomicInteger();

    static void request() {
        // A plain ThreadPoolExecutor: its idle worker is a live thread that references the
        // pool, so neither is ever collected, as in the incident (30,000 threads).
        // (newSingleThreadExecutor would not do: its wrapper shuts the pool down when the
        // garbage collector finalizes it, and every GC would end the "leak".)
        ExecutorService pool = Executors.newFixedThreadPool(1, r -> {
            Thread t = new Thread(r, "Analytics-" + NEXT.getAndIncrement());
            t.setDaemon(true);
            return t;
        });
        pool.submit(() -> {});
        // The bug: no pool.shutdown().
    }

    public static void main(String[] args) throws Exception {
        int initial = Integer.parseInt(args[0]);
        for (int i = 0; i < initial; i++) {
            request();
        }
        System.out.println("ready");
        System.out.flush();
        if (args.length > 1) {
            long every = Long.parseLong(args[1]);
            Thread leaker = new Thread(() -> {
                while (true) {
                    try {
                        Thread.sleep(every);
                    } catch (InterruptedException e) {
                        return;
                    }
                    request();
                }
            }, "leaker");
            leaker.setDaemon(true);
            leaker.start();
        }
        while (System.in.read() != -1) {
        }
    }
}
