// A JDK HttpServer that starts a new thread for every request (scripts/bench-creation-overhead.sh):
// the worst case for a JFR recording of jdk.ThreadStart with stack traces, since every
// request is one event. Usage: java ThreadPerRequest PORT (prints "ready").
import com.sun.net.httpserver.HttpServer;
import java.net.InetSocketAddress;

public class ThreadPerRequest {
    public static void main(String[] args) throws Exception {
        int port = Integer.parseInt(args[0]);
        HttpServer server = HttpServer.create(new InetSocketAddress("127.0.0.1", port), 256);
        byte[] body = "x".repeat(612).getBytes();
        server.setExecutor(command -> new Thread(command, "request").start());
        server.createContext("/", exchange -> {
            exchange.sendResponseHeaders(200, body.length);
            exchange.getResponseBody().write(body);
            exchange.close();
        });
        server.start();
        System.out.println("ready");
    }
}
