// The JVM workloads of the live scenarios: one busy "service" per mode, each handling
// requests on a timer and allocating garbage per request, so its heap has a real GC sawtooth.
//   java Service memo-leak   incident 004: results memoized in an unbounded map, one new key
//                            per request (heap floor and RSS grow)
//   java Service sawtooth    healthy: the same requests, results thrown away (flat sawtooth)
//   java Service pool        healthy: a fixed pool of 16 workers warming up, then capped
//   java Service bursts      healthy: every 5 s, 20 short-lived threads for about a second
//   java Service cache       healthy: a cache of 1,600 keys drawn at random, filling towards
//                            its plateau with a time constant of 8 s
// Prints "ready" once serving; exits when stdin closes (the scenario script holds it open).
import java.util.HashMap;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

public class Service {
    static final Map<String, byte[]> MEMO = new HashMap<>();
    static final Random RANDOM = new Random(4);
    static volatile long sink;

    // Garbage of one request: about 100 KB that dies young.
    static void churn() {
        byte[][] scratch = new byte[10][];
        for (int i = 0; i < scratch.length; i++) {
            scratch[i] = new byte[10_000];
            scratch[i][i] = (byte) i;
        }
        sink += scratch[3][3];
    }

    static byte[] compute(String key) {
        byte[] result = new byte[10_000];
        result[key.length() % result.length] = 1;
        return result;
    }

    public static void main(String[] args) throws Exception {
        String mode = args[0];
        Thread worker = new Thread(() -> {
            try {
                run(mode);
            } catch (InterruptedException e) {
                // Stopping.
            }
        }, "requests");
        worker.setDaemon(true);
        worker.start();
        System.out.println("ready");
        System.out.flush();
        while (System.in.read() != -1) {
        }
    }

    static void run(String mode) throws InterruptedException {
        ExecutorService pool = mode.equals("pool") ? Executors.newFixedThreadPool(16) : null;
        long request = 0;
        while (true) {
            // 200 requests a second, in ticks of 10 ms.
            Thread.sleep(10);
            for (int i = 0; i < 2; i++, request++) {
                churn();
                switch (mode) {
                    case "memo-leak":
                        // The bug: every argument is new, so the memo never hits and never
                        // forgets. 2 MB a second of results kept forever.
                        String key = "user-" + request;
                        MEMO.computeIfAbsent(key, Service::compute);
                        break;
                    case "cache":
                        // 200 lookups a second over 1,600 keys: the cache holds
                        // 1600 * (1 - exp(-t / 8 s)) entries, 16 MB when full.
                        String cached = "item-" + RANDOM.nextInt(1_600);
                        MEMO.computeIfAbsent(cached, Service::compute);
                        break;
                    case "pool":
                        // A new task every half second; the fixed pool starts a worker per
                        // task until it holds 16, then reuses them.
                        if (request % 100 == 0) {
                            pool.submit(() -> sink++);
                        }
                        break;
                    case "bursts":
                        if (request % 1_000 == 0) {
                            for (int t = 0; t < 20; t++) {
                                Thread burst = new Thread(() -> {
                                    try {
                                        Thread.sleep(1_000);
                                    } catch (InterruptedException e) {
                                        // Stopping.
                                    }
                                }, "burst-" + t);
                                burst.setDaemon(true);
                                burst.start();
                            }
                        }
                        break;
                    default:
                        break;
                }
            }
        }
    }
}
