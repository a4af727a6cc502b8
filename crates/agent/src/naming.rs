//! Automatic target names: what a process is called when no rule, systemd service or
//! container names it. The name is the program a user started — the main class or jar of a
//! JVM, the script or module of an interpreter, the assembly of `dotnet`, else the
//! executable's base name — and two different command lines that run programs of the same
//! name are told apart by a hash: the first one seen is `AnalyticsServer`, another is
//! `AnalyticsServer-3fa2c1`. [`Names`] remembers which command line owns each plain name.

use std::collections::{HashMap, HashSet};

/// Program names are cut to this many characters (after control characters are escaped).
pub const MAX_PROGRAM_CHARS: usize = 64;

/// Plain names remembered with their owner. At the bound, the quarter least recently seen
/// is forgotten; a forgotten name goes to the next command line seen with it.
pub const MAX_OWNERS: usize = 4096;

/// Which command line (by [`identity_hash`]) owns each plain program name, bounded by
/// [`MAX_OWNERS`]. Held by the agent's sampler for its lifetime: after an agent restart, the
/// first command line seen with a name claims it again; `targets::group` resolves the
/// processes of a pass oldest first, so the longest-running service is the one that does.
#[derive(Debug, Default)]
pub struct Names {
    owners: HashMap<String, Owner>,
    /// Names a process may never take plainly: the configured `[[target]]` names, so an
    /// automatic target never shares a history with a configured one.
    reserved: HashSet<String>,
    /// `name-hash` names in the store whose plain `name` is there too: that command line did
    /// not own the name before the agent restarted, and does not claim it now
    /// ([`Names::seed`]). At most [`MAX_OWNERS`].
    others: HashSet<String>,
    clock: u64,
}

#[derive(Debug, Clone, Copy)]
struct Owner {
    hash: u32,
    seen: u64,
}

impl Names {
    pub fn new(reserved: impl IntoIterator<Item = String>) -> Names {
        Names {
            reserved: reserved.into_iter().collect(),
            ..Names::default()
        }
    }

    /// Learns from the automatic targets already in the store (their names) which command
    /// lines did not own their program's name: for each `name-hash` whose plain `name` is
    /// also stored, the command line with `hash` keeps `name-hash` after an agent restart
    /// instead of claiming `name` because it happened to be seen first. Names of the older
    /// `base-hash` form without a plain `base` beside them teach nothing.
    pub fn seed<'a>(&mut self, stored: impl IntoIterator<Item = &'a str>) {
        let stored: HashSet<&str> = stored.into_iter().collect();
        let mut others: Vec<&str> = stored
            .iter()
            .copied()
            .filter(|name| split_suffix(name).is_some_and(|(plain, _)| stored.contains(plain)))
            .collect();
        others.sort_unstable();
        others.truncate(MAX_OWNERS);
        self.others = others.into_iter().map(str::to_string).collect();
    }

    /// The automatic target name of a process: its program name, plain if this command
    /// line owns it, else with the command line's hash.
    pub fn exe_target_name(&mut self, exe: Option<&str>, comm: &str, cmdline: &[String]) -> String {
        let program = program_name(exe, comm, cmdline);
        let hash = identity_hash(exe, comm, cmdline);
        self.name(program, hash)
    }

    /// `program` if the command line with `hash` owns it (or claims it now), else
    /// `program-hash`.
    pub fn name(&mut self, program: String, hash: u32) -> String {
        // Names other targets use: a configured rule's, or one that looks like a systemd
        // service's or a container's.
        if self.reserved.contains(&program)
            || program.ends_with(".service")
            || program.starts_with("container-")
        {
            return suffixed(&program, hash);
        }
        self.clock += 1;
        let clock = self.clock;
        if let Some(owner) = self.owners.get_mut(&program) {
            owner.seen = clock;
            return if owner.hash == hash {
                program
            } else {
                suffixed(&program, hash)
            };
        }
        if !self.others.is_empty() {
            let name = suffixed(&program, hash);
            if self.others.contains(&name) {
                return name;
            }
        }
        if self.owners.len() >= MAX_OWNERS {
            self.forget_oldest();
        }
        self.owners
            .insert(program.clone(), Owner { hash, seen: clock });
        program
    }

    /// Plain names remembered now.
    pub fn len(&self) -> usize {
        self.owners.len()
    }

    pub fn is_empty(&self) -> bool {
        self.owners.is_empty()
    }

    /// Forgets the quarter of the names seen least recently: one sort per `MAX_OWNERS / 4`
    /// new names, however many programs come and go.
    fn forget_oldest(&mut self) {
        let mut seen: Vec<u64> = self.owners.values().map(|o| o.seen).collect();
        let cut = MAX_OWNERS / 4;
        let (_, threshold, _) = seen.select_nth_unstable(cut - 1);
        let threshold = *threshold;
        self.owners.retain(|_, owner| owner.seen > threshold);
    }
}

fn suffixed(program: &str, hash: u32) -> String {
    format!("{program}-{hash:06x}")
}

/// `name-3fa2c1` -> `("name", "3fa2c1")`.
fn split_suffix(name: &str) -> Option<(&str, &str)> {
    let (plain, hash) = name.rsplit_once('-')?;
    let hex = hash.len() == 6 && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    (hex && !plain.is_empty()).then_some((plain, hash))
}

/// 24 bits of an FNV-1a hash of executable and arguments with digit runs collapsed, so a
/// restart with a new port or pid file in its arguments is the same command line, while two
/// different services run by the same interpreter are not. Stable across releases and
/// platforms, unlike std's hasher.
pub fn identity_hash(exe: Option<&str>, comm: &str, cmdline: &[String]) -> u32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        let mut previous_digit = false;
        for &b in bytes {
            let digit = b.is_ascii_digit();
            if digit && previous_digit {
                continue;
            }
            previous_digit = digit;
            hash ^= u64::from(if digit { b'#' } else { b });
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        hash ^= 0xff;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    };
    feed(exe.unwrap_or(comm).as_bytes());
    for arg in cmdline.iter().skip(1) {
        feed(arg.as_bytes());
    }
    (hash & 0xff_ffff) as u32
}

/// The program a process runs, for people: for an interpreter or VM the program it was
/// given ([`interpreted_program`]), else the executable's base name (`comm` when the
/// executable is not readable). Control characters escaped, at most [`MAX_PROGRAM_CHARS`].
pub fn program_name(exe: Option<&str>, comm: &str, cmdline: &[String]) -> String {
    let base = exe
        .and_then(|e| e.rsplit('/').next())
        .map(|e| e.trim_end_matches(" (deleted)"))
        .filter(|e| !e.is_empty())
        .unwrap_or(comm);
    let program = interpreter(base)
        .or_else(|| interpreter(comm))
        .and_then(|kind| interpreted_program(kind, cmdline))
        .unwrap_or_else(|| base.to_string());
    // The name is a key, a label and a line of text everywhere: never raw control characters.
    let visible = leakwatch_model::text::visible(&program);
    match visible.char_indices().nth(MAX_PROGRAM_CHARS) {
        Some((end, _)) => visible[..end].to_string(),
        None => visible,
    }
}

/// The interpreters and VMs whose program is named instead of themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interpreter {
    Java,
    Python,
    Node,
    Deno,
    Bun,
    Ruby,
    Perl,
    Php,
    Dotnet,
}

/// Recognises an interpreter by its executable's base name or `comm`, with or without a
/// version (`python3.11`, `ruby3.2`, `php8.2`, `pypy3`).
pub fn interpreter(name: &str) -> Option<Interpreter> {
    let unversioned = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    Some(match unversioned {
        "java" if name == "java" => Interpreter::Java,
        "python" | "pypy" => Interpreter::Python,
        "node" | "nodejs" if !name.contains('.') => Interpreter::Node,
        "deno" if name == "deno" => Interpreter::Deno,
        "bun" if name == "bun" => Interpreter::Bun,
        "ruby" => Interpreter::Ruby,
        "perl" => Interpreter::Perl,
        "php" => Interpreter::Php,
        "dotnet" if name == "dotnet" => Interpreter::Dotnet,
        _ => return None,
    })
}

/// How an interpreter's command line is read.
struct Grammar {
    /// Options whose value is the next argument (or attached: `-Xdev`, `--opt=value`).
    takes_value: &'static [&'static str],
    /// Options whose value is the program (`-m module`, `-jar app.jar`, `-f script.php`).
    program: &'static [&'static str],
    /// Options after which the program is code on the command line: there is no file to
    /// name, and the interpreter is named.
    inline_code: &'static [&'static str],
    /// Short options may be clustered (`-uO`, `-wle`) and take their value attached.
    clusters: bool,
    /// Leading words that are not the program (`deno run`, `dotnet exec`).
    subcommands: &'static [&'static str],
}

fn grammar(kind: Interpreter) -> Grammar {
    match kind {
        Interpreter::Java => Grammar {
            takes_value: &[
                "-cp",
                "-classpath",
                "--class-path",
                "-p",
                "--module-path",
                "--upgrade-module-path",
                "--add-modules",
                "--add-opens",
                "--add-exports",
                "--add-reads",
                "--patch-module",
                "--limit-modules",
                "--source",
            ],
            program: &["-jar", "-m", "--module"],
            inline_code: &[],
            clusters: false,
            subcommands: &[],
        },
        Interpreter::Python => Grammar {
            takes_value: &["-X", "-W", "--check-hash-based-pycs"],
            program: &["-m"],
            inline_code: &["-c"],
            clusters: true,
            subcommands: &[],
        },
        Interpreter::Node | Interpreter::Deno | Interpreter::Bun => Grammar {
            takes_value: &[
                "-r",
                "--require",
                "--import",
                "--loader",
                "--experimental-loader",
                "-C",
                "--conditions",
                "--config",
                "--env-file",
                "--cwd",
            ],
            program: &[],
            inline_code: &["-e", "--eval", "-p", "--print"],
            clusters: false,
            // `deno run script.ts`, `bun run script.ts`; node has no subcommands.
            subcommands: if kind == Interpreter::Node {
                &[]
            } else {
                &["run"]
            },
        },
        Interpreter::Ruby => Grammar {
            takes_value: &["-I", "-r", "-C", "-E", "--encoding"],
            program: &[],
            inline_code: &["-e"],
            clusters: true,
            subcommands: &[],
        },
        Interpreter::Perl => Grammar {
            takes_value: &["-I", "-M", "-m", "-x", "-C"],
            program: &[],
            inline_code: &["-e", "-E"],
            clusters: true,
            subcommands: &[],
        },
        Interpreter::Php => Grammar {
            takes_value: &["-c", "-d", "-z", "-t"],
            program: &["-f"],
            inline_code: &["-r", "-S", "-a", "-R", "-B", "-E"],
            clusters: false,
            subcommands: &[],
        },
        Interpreter::Dotnet => Grammar {
            takes_value: &[
                "--roll-forward",
                "--additionalprobingpath",
                "--additional-deps",
                "--depsfile",
                "--runtimeconfig",
                "--fx-version",
            ],
            program: &[],
            inline_code: &[],
            clusters: false,
            subcommands: &["exec"],
        },
    }
}

/// The program an interpreter runs, by its command line (`cmdline[0]` is the interpreter):
/// the simple name of a JVM's main class (`com.x.AnalyticsServer` -> `AnalyticsServer`) or
/// module's main class (`-m mod/com.x.Main` -> `Main`) or its jar without version and
/// `.jar` (`shop-2.3.jar` -> `shop`); the base
/// name of a script (`/srv/order_worker.py` -> `order_worker.py`) or Python's `-m` module
/// (`http.server`); `dotnet`'s assembly without `.dll`. `None` when the program is code on
/// the command line (`python3 -c ...`), read from stdin, or not found.
pub fn interpreted_program(kind: Interpreter, cmdline: &[String]) -> Option<String> {
    let grammar = grammar(kind);
    let mut args = cmdline.iter().skip(1).map(String::as_str);
    let mut positional_seen = false;
    while let Some(arg) = args.next() {
        if arg == "--" {
            return args.next().and_then(|a| shape(kind, a, None));
        }
        if arg.starts_with('@') && kind == Interpreter::Java {
            continue; // an argument file: its contents are not known
        }
        if arg == "-" || !arg.starts_with('-') {
            if arg == "-" {
                return None; // the program is read from stdin
            }
            if !positional_seen && grammar.subcommands.contains(&arg) {
                positional_seen = true;
                continue;
            }
            return shape(kind, arg, None);
        }
        // `--opt=value`
        if let Some((option, value)) = arg.split_once('=').filter(|_| arg.starts_with("--")) {
            if grammar.program.contains(&option) {
                return shape(kind, value, Some(option));
            }
            if grammar.inline_code.contains(&option) {
                return None;
            }
            continue;
        }
        if grammar.program.contains(&arg) {
            return args.next().and_then(|v| shape(kind, v, Some(arg)));
        }
        if grammar.inline_code.contains(&arg) {
            return None;
        }
        if grammar.takes_value.contains(&arg) {
            args.next();
            continue;
        }
        if grammar.clusters && !arg.starts_with("--") {
            // `-uO`, `-Wignore`, `-mhttp.server`, `-I lib`: letter by letter until one
            // that takes a value.
            for (i, letter) in arg.char_indices().skip(1) {
                let flag = format!("-{letter}");
                let flag = flag.as_str();
                let rest = &arg[i + letter.len_utf8()..];
                if grammar.inline_code.contains(&flag) {
                    return None;
                }
                let wanted = grammar.program.contains(&flag);
                if wanted || grammar.takes_value.contains(&flag) {
                    let value = if rest.is_empty() {
                        args.next()
                    } else {
                        Some(rest)
                    };
                    if wanted {
                        return value.and_then(|v| shape(kind, v, Some(flag)));
                    }
                    break;
                }
            }
        }
        // Any other option stands alone (`-Xmx512m`, `-Dk=v`, `-XX:+UseG1GC`, `--inspect`).
    }
    None
}

/// The name of a program found at `arg` (given by `option`, or positional).
fn shape(kind: Interpreter, arg: &str, option: Option<&str>) -> Option<String> {
    let base = arg.rsplit('/').next().unwrap_or(arg);
    let name = match (kind, option) {
        (Interpreter::Java, Some("-jar")) => {
            without_version(base.strip_suffix(".jar").unwrap_or(base))
        }
        // `-m module/com.x.Main`: the main class; `-m module` alone: the module.
        (Interpreter::Java, Some(_)) => match arg.split_once('/') {
            Some((_, class)) => simple_class(class),
            None => arg,
        },
        // Source-file mode (`java Hello.java`): the file.
        (Interpreter::Java, None) if base.ends_with(".java") => base,
        (Interpreter::Java, None) => simple_class(arg),
        (Interpreter::Python, Some(_)) => arg,
        // `dotnet Api.dll`; anything else (`dotnet run`, `dotnet build`) is the SDK's.
        (Interpreter::Dotnet, _) => base.strip_suffix(".dll")?,
        _ => base,
    };
    (!name.is_empty()).then(|| name.to_string())
}

/// `shop-2.3.1-SNAPSHOT` -> `shop`: a jar's name without the version Maven and Gradle append
/// (from the first `-` followed by a digit), so a deployment of a new version is the same
/// target.
fn without_version(jar: &str) -> &str {
    let cut = jar.char_indices().find(|&(i, c)| {
        c == '-' && i > 0 && jar[i + 1..].starts_with(|d: char| d.is_ascii_digit())
    });
    match cut {
        Some((i, _)) => &jar[..i],
        None => jar,
    }
}

/// `com.x.AnalyticsServer` -> `AnalyticsServer`.
fn simple_class(class: &str) -> &str {
    class.rsplit('.').next().unwrap_or(class)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split(' ').map(str::to_string).collect()
    }

    /// The program name of `line` run by the executable `exe`.
    fn program(exe: &str, line: &str) -> String {
        let comm = exe.rsplit('/').next().unwrap();
        program_name(Some(exe), comm, &args(line))
    }

    #[test]
    fn java_names_its_main_class_jar_or_module() {
        let java = "/usr/lib/jvm/java-17-openjdk-amd64/bin/java";
        for (line, name) in [
            ("java -cp . AnalyticsServer", "AnalyticsServer"),
            ("java -Xmx1g -jar /opt/app/shop-2.3.jar", "shop"),
            ("java -jar app-1.0.0-SNAPSHOT.jar --port=80", "app"),
            ("java -jar log4j-core-2.17.1.jar", "log4j-core"),
            ("java -jar 2048-game.jar", "2048-game"),
            ("java -jar -1.jar", "-1"),
            ("java -cp a.jar:b.jar com.x.Main --port 8080", "Main"),
            (
                "java -Xmx512m -Dk=v -XX:+UseG1GC -classpath /a:/b com.x.AnalyticsServer",
                "AnalyticsServer",
            ),
            (
                "java --class-path lib/* --add-opens java.base/java.lang=ALL-UNNAMED com.x.Api",
                "Api",
            ),
            ("java -p mods -m com.shop/com.shop.Checkout", "Checkout"),
            (
                "java --module-path mods --module=com.shop/com.shop.Cart x",
                "Cart",
            ),
            ("java -m com.shop", "com.shop"),
            ("java @opts.txt -cp . Worker", "Worker"),
            ("java --source 17 /tmp/Hello.java", "Hello.java"),
            // Nothing to name: the JVM itself.
            ("java -version", "java"),
        ] {
            assert_eq!(program(java, line), name, "{line}");
        }
    }

    #[test]
    fn python_names_its_script_or_module() {
        for (exe, line, name) in [
            (
                "/usr/bin/python3",
                "python3 -u /srv/order_worker.py",
                "order_worker.py",
            ),
            (
                "/usr/bin/python3.11",
                "python3 -m http.server 8000",
                "http.server",
            ),
            ("/usr/bin/python3.11", "python3 -uOm pkg.mod", "pkg.mod"),
            ("/usr/bin/python3", "python3 -mhttp.server", "http.server"),
            (
                "/usr/bin/python3",
                "python3 -X dev -W ignore -Wdefault ./bin/sync.py --once",
                "sync.py",
            ),
            ("/usr/bin/python", "python -- -odd.py", "-odd.py"),
            ("/usr/bin/pypy3", "pypy3 app.py", "app.py"),
            // Code on the command line, or stdin: the interpreter, as for a native binary.
            (
                "/usr/bin/python3.11",
                "python3 -c import time; time.sleep(9)",
                "python3.11",
            ),
            ("/usr/bin/python3", "python3 -", "python3"),
            ("/usr/bin/python3", "python3", "python3"),
        ] {
            assert_eq!(program(exe, line), name, "{line}");
        }
    }

    #[test]
    fn other_interpreters_name_their_script() {
        for (exe, line, name) in [
            ("/usr/bin/node", "node server.js", "server.js"),
            (
                "/usr/bin/node",
                "node --max-old-space-size=512 -r dotenv/config dist/api.js",
                "api.js",
            ),
            ("/usr/bin/node", "node -e setInterval(()=>{},1000)", "node"),
            (
                "/usr/local/bin/deno",
                "deno run --allow-net serve.ts",
                "serve.ts",
            ),
            ("/usr/local/bin/bun", "bun run index.ts", "index.ts"),
            ("/usr/bin/dotnet", "dotnet Api.dll", "Api"),
            (
                "/usr/bin/dotnet",
                "dotnet exec --roll-forward Major /app/Shop.Api.dll",
                "Shop.Api",
            ),
            (
                "/usr/bin/ruby3.2",
                "ruby -Ilib -r bundler/setup /usr/bin/puma -C config.rb",
                "puma",
            ),
            ("/usr/bin/ruby", "ruby -e loop{sleep}", "ruby"),
            (
                "/usr/bin/perl",
                "perl -w -I /opt/lib /opt/bin/collector.pl",
                "collector.pl",
            ),
            ("/usr/bin/perl", "perl -wle print", "perl"),
            (
                "/usr/bin/php8.2",
                "php -d memory_limit=1G artisan queue:work",
                "artisan",
            ),
            ("/usr/bin/php", "php -f /srv/cron.php", "cron.php"),
            ("/usr/bin/php", "php -S 0.0.0.0:8000", "php"),
        ] {
            assert_eq!(program(exe, line), name, "{line}");
        }
    }

    #[test]
    fn native_binaries_and_shells_keep_their_name() {
        assert_eq!(program("/usr/sbin/nginx", "nginx -g daemon off;"), "nginx");
        assert_eq!(program("/bin/bash", "bash /srv/run.sh"), "bash");
        assert_eq!(program("/usr/bin/sh", "sh -c exit 0"), "sh");
        // Not interpreters, though their names begin like one.
        assert_eq!(program("/usr/bin/javac", "javac -d out A.java"), "javac");
        assert_eq!(
            program("/usr/bin/php-fpm8.2", "php-fpm: master process"),
            "php-fpm8.2"
        );
        assert_eq!(
            program("/usr/bin/node_exporter", "node_exporter x.js"),
            "node_exporter"
        );
        // Unreadable executable: `comm`, which also recognises an interpreter.
        assert_eq!(
            program_name(None, "python3", &args("python3 /srv/order_worker.py")),
            "order_worker.py"
        );
        assert_eq!(program_name(None, "kworker/0:1", &[]), "kworker/0:1");
        assert_eq!(program("/opt/app/server (deleted)", "server"), "server");
    }

    #[test]
    fn names_are_visible_and_bounded() {
        let name = program("/usr/bin/python3", "python3 /tmp/evil\x1b]0;pwned\x07.py");
        assert_eq!(name, "evil\\e]0;pwned\\x07.py");
        let long = format!("python3 /srv/{}.py", "a".repeat(500));
        assert_eq!(
            program("/usr/bin/python3", &long).chars().count(),
            MAX_PROGRAM_CHARS
        );
        let wide = format!("python3 /srv/{}.py", "é".repeat(100));
        assert_eq!(
            program("/usr/bin/python3", &wide),
            "é".repeat(MAX_PROGRAM_CHARS)
        );
    }

    #[test]
    fn the_hash_survives_changing_numbers() {
        let java = Some("/usr/bin/java");
        let a = identity_hash(java, "java", &args("java -Dport=8080 Main"));
        let b = identity_hash(java, "java", &args("java -Dport=9191 Main"));
        let c = identity_hash(java, "java", &args("java Other"));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a <= 0xff_ffff);
    }

    #[test]
    fn the_first_command_line_owns_the_plain_name() {
        let mut names = Names::new([]);
        let java = Some("/usr/bin/java");
        let shop = args("java -cp /srv/shop com.shop.AnalyticsServer --port 8080");
        let shop_restarted = args("java -cp /srv/shop com.shop.AnalyticsServer --port 8081");
        let other = args("java -cp /srv/ads com.ads.AnalyticsServer");
        assert_eq!(
            names.exe_target_name(java, "java", &shop),
            "AnalyticsServer"
        );
        let hash = identity_hash(java, "java", &other);
        let second = format!("AnalyticsServer-{hash:06x}");
        assert_eq!(names.exe_target_name(java, "java", &other), second);
        // Both keep their names, pass after pass, and across a restart with a new port.
        for _ in 0..3 {
            assert_eq!(names.exe_target_name(java, "java", &other), second);
            assert_eq!(
                names.exe_target_name(java, "java", &shop_restarted),
                "AnalyticsServer"
            );
        }
        // A native binary follows the same rule.
        let nginx = Some("/usr/sbin/nginx");
        assert_eq!(
            names.exe_target_name(nginx, "nginx", &args("nginx")),
            "nginx"
        );
        assert_ne!(
            names.exe_target_name(nginx, "nginx", &args("nginx -c /etc/other.conf")),
            "nginx"
        );
    }

    #[test]
    fn after_a_restart_the_store_tells_who_did_not_own_a_name() {
        // Before: `worker.py` was the old worker's, the new worker was `worker.py-00000b`.
        // The new worker is seen first after the restart: it keeps its name.
        let mut names = Names::new([]);
        names.seed([
            "worker.py",
            "worker.py-00000b",
            "java-03a1f0",
            "nginx",
            "x-1",
        ]);
        assert_eq!(names.name("worker.py".into(), 0xb), "worker.py-00000b");
        assert_eq!(names.name("worker.py".into(), 0xa), "worker.py");
        assert_eq!(names.name("worker.py".into(), 0xb), "worker.py-00000b");
        // A name of the older form, without its plain name stored, teaches nothing: the
        // command line behind `java-03a1f0` gets the plain name now.
        assert_eq!(names.name("java".into(), 0x03a1f0), "java");
        assert_eq!(names.others.len(), 1);
    }

    #[test]
    fn configured_and_other_kinds_of_names_are_never_taken_plainly() {
        let mut names = Names::new(["api".to_string()]);
        let hash = identity_hash(Some("/srv/api"), "api", &args("api"));
        assert_eq!(
            names.exe_target_name(Some("/srv/api"), "api", &args("api")),
            format!("api-{hash:06x}")
        );
        let odd = names.exe_target_name(Some("/x/db.service"), "db.service", &args("db.service"));
        assert!(odd.starts_with("db.service-"), "{odd}");
        let odd = names.exe_target_name(Some("/x/container-1"), "container-1", &[]);
        assert!(odd.starts_with("container-1-"), "{odd}");
        assert!(names.is_empty());
    }

    #[test]
    fn the_memory_is_bounded_and_forgets_the_least_recently_seen() {
        let mut names = Names::new([]);
        // An old service, then more programs than the bound, the service seen now and then.
        assert_eq!(names.name("service".into(), 1), "service");
        for i in 0..3 * MAX_OWNERS {
            names.name(format!("job{i}"), 7);
            if i % 1000 == 0 {
                assert_eq!(names.name("service".into(), 1), "service");
                assert_eq!(names.name("service".into(), 2), "service-000002");
            }
            assert!(names.len() <= MAX_OWNERS);
        }
        assert_eq!(names.name("service".into(), 1), "service");
        // The first jobs were forgotten: their name goes to whoever comes next.
        assert_eq!(names.name("job0".into(), 9), "job0");
        // Recent ones are remembered.
        let recent = format!("job{}", 3 * MAX_OWNERS - 1);
        assert_eq!(names.name(recent.clone(), 9), format!("{recent}-000009"));
    }
}
