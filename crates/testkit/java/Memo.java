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

    public static void main(String[] args) throws Exception {
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
