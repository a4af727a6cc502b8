// Incident 004 in miniature: a memoized function whose every argument is new, so its
// unbounded cache only grows. The values are shared constants (Boolean.TRUE/FALSE), so what
// grows is the map itself: a HashMap$Node (32 bytes) and a boxed Long key (16 bytes) per
// entry, 100,000 entries a second. Prints "ready", then runs until killed.
import java.util.HashMap;
import java.util.Map;

public class Memo {
    static final Map<Long, Boolean> MEMO = new HashMap<>();

    static boolean lucky(long n) {
        return n % 7 == 3;
    }

    static boolean memoLucky(long n) {
        return MEMO.computeIfAbsent(n, Memo::lucky);
    }

    // `Memo fill`: a heap filled to its limit and held there (an incident 004 JVM just before
    // it dies): 256 KiB chunks until the first OutOfMemoryError, then two given back so the
    // JVM goes on living. Prints "ready" once full.
    static final java.util.List<byte[]> HELD = new java.util.ArrayList<>();

    static void fill() throws Exception {
        try {
            while (true) {
                HELD.add(new byte[256 * 1024]);
            }
        } catch (OutOfMemoryError full) {
            HELD.remove(HELD.size() - 1);
            HELD.remove(HELD.size() - 1);
        }
        System.out.println("ready");
        System.out.flush();
        while (true) {
            Thread.sleep(1000);
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length > 0 && args[0].equals("fill")) {
            fill();
        }
        System.out.println("ready");
        System.out.flush();
        long n = 1_000_000_000L;
        long hits = 0;
        while (true) {
            for (int i = 0; i < 10_000; i++) {
                if (memoLucky(n++)) {
                    hits++;
                }
            }
            Thread.sleep(100);
        }
    }
}
