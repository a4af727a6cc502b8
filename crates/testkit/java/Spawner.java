// A busy JVM that starts short-lived threads all the time (a thread per task, healthy: each
// ends at once): about a thousand jdk.ThreadStart events a second, more than the agent's
// evidence output cap holds as `jfr print --json` in a few seconds.
//   java Spawner        print "ready", start a "task-N" thread every millisecond from
//                       Spawner.spawn until stdin ends
import java.util.concurrent.atomic.AtomicInteger;

public class Spawner {
    static final AtomicInteger NEXT = new AtomicInteger();

    static void spawn() {
        Thread t = new Thread(() -> {}, "task-" + NEXT.getAndIncrement());
        t.setDaemon(true);
        t.start();
    }

    public static void main(String[] args) throws Exception {
        Thread loop = new Thread(() -> {
            while (true) {
                try {
                    Thread.sleep(1);
                } catch (InterruptedException e) {
                    return;
                }
                spawn();
            }
        }, "spawner");
        loop.setDaemon(true);
        loop.start();
        System.out.println("ready");
        System.out.flush();
        while (System.in.read() != -1) {
        }
    }
}
