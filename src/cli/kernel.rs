//! (binary) `retort kernel --connection-file FILE`: a Jupyter kernel (messaging protocol 5.3).
//! The wire protocol, HMAC-SHA256 signing and the ZeroMQ sockets are `jupyter-zmq-client`'s
//! (pure-Rust ZeroMQ), the message types `jupyter-protocol`'s. Cells run on the session core
//! ([`Cells`]), on this thread, so variables, functions and imports persist across cells; the
//! sockets live on a tokio runtime beside it. The control channel interrupts a running cell
//! (training stops between batches) and shuts the kernel down. A message whose signature does
//! not verify, or that does not parse, is dropped with a line on stderr and never run.

use jupyter_protocol::{
    CodeMirrorMode, CommInfoReply, CompleteReply, DisplayData, ErrorOutput, ExecuteInput, ExecuteReply, ExecuteResult, ExecutionCount,
    HistoryEntry, HistoryReply, HistoryRequest, InspectReply, InterruptReply, IsCompleteReply, IsCompleteReplyStatus, JupyterMessage,
    JupyterMessageContent, KernelInfoReply, LanguageInfo, Media, MediaType, ReplyError, ReplyStatus, ShutdownReply, Status, StreamContent,
    Transient, UpdateDisplayData,
};
use jupyter_zmq_client as zmq;
use retort::notebook::cell::{CellOutput, Cells};
use retort::notebook::ipynb;
use retort::script::{RunOptions, ScriptError};
use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};

/// What the sockets hand the session's thread.
enum Request {
    Shell(Box<JupyterMessage>),
    Shutdown,
}

/// Where a message goes out.
enum Outgoing {
    Shell(Box<JupyterMessage>),
    IoPub(Box<JupyterMessage>),
}

/// A connection file, read and checked: an error names the file and what to fix.
pub fn connection_info(path: &Path) -> Result<jupyter_protocol::ConnectionInfo, ScriptError> {
    let shown = path.display().to_string();
    let bad = |m: String| ScriptError::usage(&shown, m);
    let text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read the connection file: {e}")))?;
    let info: jupyter_protocol::ConnectionInfo = serde_json::from_str(&text).map_err(|e| {
        bad(format!("not a Jupyter connection file ({e}); it needs ip, transport, shell_port, iopub_port, stdin_port, control_port, hb_port, key and signature_scheme"))
    })?;
    if info.signature_scheme != "hmac-sha256" {
        return Err(bad(format!("signature_scheme '{}': this kernel signs with hmac-sha256 only", info.signature_scheme)));
    }
    if info.key.is_empty() {
        return Err(bad("the key is empty: this kernel runs only signed messages, so it needs an HMAC key".into()));
    }
    Ok(info)
}

/// Runs the kernel until a shutdown request (or until its sockets close).
pub fn run(connection_file: &Path, opts: &RunOptions) -> Result<(), ScriptError> {
    let info = connection_info(connection_file)?;
    let shown = connection_file.display().to_string();
    let failed = |what: &str, e: &dyn std::fmt::Display| ScriptError::failure(&shown, format!("{what}: {e}"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| failed("cannot start the kernel's I/O thread", &e))?;
    let session_id = format!("retort-{}", std::process::id());
    let (requests, incoming) = mpsc::channel::<Request>();
    let (outgoing, mut to_send) = unbounded_channel::<Outgoing>();

    // plots are sent as image/png; their files go to the run record, or to a temporary folder
    // removed at the end
    let scratch = opts.record.is_none().then(|| ipynb::TempDir(std::env::temp_dir().join(format!("retort-kernel-{}", std::process::id()))));
    if let Some(t) = &scratch {
        std::fs::create_dir_all(&t.0).map_err(|e| failed(&t.0.display().to_string(), &e))?;
    }
    let mut cells = Cells::start(opts, scratch.as_ref().map(|t| t.0.clone()), "kernel")?;
    if let Some(dir) = cells.session().run_dir() {
        eprintln!("retort kernel: recording this session in {}", dir.display());
    }
    let interrupt = cells.session().interrupt_handle();

    let sockets = runtime.block_on(async {
        let heartbeat = zmq::create_kernel_heartbeat_connection(&info).await?;
        let shell = zmq::create_kernel_shell_connection(&info, &session_id).await?;
        let control = zmq::create_kernel_control_connection(&info, &session_id).await?;
        let stdin = zmq::create_kernel_stdin_connection(&info, &session_id).await?;
        let iopub = zmq::create_kernel_iopub_xpub_connection(&info, &session_id).await?;
        Ok::<_, zmq::RuntimeError>((heartbeat, shell, control, stdin, iopub))
    });
    let (mut heartbeat, shell, control, stdin, iopub) =
        sockets.map_err(|e| failed(&format!("cannot bind the kernel's sockets on {} {}", info.transport, info.ip), &e))?;
    let (shell_writer, shell_reader) = shell.split();

    runtime.spawn(async move {
        use zeromq::{SocketRecv, SocketSend};
        // each ping comes back as it was sent
        while let Ok(ping) = heartbeat.socket.recv().await {
            if heartbeat.socket.send(ping).await.is_err() {
                break;
            }
        }
    });
    // when the process that started the kernel goes away, the kernel goes too
    #[cfg(unix)]
    {
        let (parent, requests, interrupt) = (std::os::unix::process::parent_id(), requests.clone(), interrupt.clone());
        runtime.spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                if std::os::unix::process::parent_id() != parent {
                    eprintln!("retort kernel: the process that started it ended; shutting down");
                    interrupt.store(true, Ordering::SeqCst);
                    let _ = requests.send(Request::Shutdown);
                    break;
                }
            }
        });
    }
    // a SIGINT (Ctrl-C in the terminal Jupyter runs in) interrupts, as interrupt_request does
    let sigint = interrupt.clone();
    let _ = ctrlc::set_handler(move || sigint.store(true, Ordering::SeqCst));
    runtime.spawn(control_loop(control, interrupt.clone(), requests.clone()));
    runtime.spawn(shell_loop(shell_reader, requests.clone()));
    runtime.spawn(async move {
        let (mut shell_writer, mut iopub, _stdin) = (shell_writer, iopub, stdin);
        loop {
            tokio::select! {
                message = to_send.recv() => {
                    let sent = match message {
                        Some(Outgoing::Shell(m)) => shell_writer.send(*m).await,
                        Some(Outgoing::IoPub(m)) => iopub.send(*m).await,
                        None => break,
                    };
                    if let Err(e) = sent {
                        eprintln!("retort kernel: cannot send a message: {e}");
                    }
                }
                event = iopub.recv_subscription() => {
                    if let Ok(zmq::SubscriptionEvent::Subscribe(topic)) = event {
                        let _ = iopub.send(jupyter_protocol::IoPubWelcome::new(topic).into()).await;
                    }
                }
            }
        }
    });

    let mut kernel = Kernel { outgoing, history: vec![] };
    'serve: while let Ok(request) = incoming.recv() {
        let Request::Shell(message) = request else { break };
        // a cell failed with stop_on_error: the executions queued behind it when it failed
        // (taken before its reply went out) are aborted, as ipykernel does with its default
        // stop_on_error_timeout of 0, so "Run All" stops at the failing cell; a request sent
        // after the failure's reply runs
        for request in kernel.handle(&mut cells, &message, &incoming) {
            let Request::Shell(queued) = request else { break 'serve };
            match &queued.content {
                JupyterMessageContent::ExecuteRequest(_) => kernel.abort(&cells, &queued),
                _ => {
                    kernel.handle(&mut cells, &queued, &incoming);
                }
            }
        }
    }
    let finished = cells.session().finish(None);
    // the last replies (shutdown's among them) leave before the sockets close
    runtime.block_on(async { tokio::time::sleep(std::time::Duration::from_millis(100)).await });
    runtime.shutdown_background();
    finished
}

/// Reads the shell channel: requests go to the session's thread in order; a message that does
/// not verify or parse is dropped.
async fn shell_loop(mut reader: zmq::RouterRecvConnection, requests: mpsc::Sender<Request>) {
    loop {
        match reader.read().await {
            Ok(message) => {
                if requests.send(Request::Shell(Box::new(message))).is_err() {
                    break;
                }
            }
            Err(e) if dropped("shell", &e) => {}
            Err(_) => break,
        }
    }
}

/// Whether a read error is one bad message (logged and dropped) rather than a closed socket.
fn dropped(channel: &str, e: &zmq::RuntimeError) -> bool {
    use zmq::RuntimeError as E;
    let bad_message = matches!(
        e,
        E::VerifyError(_)
            | E::DecodeError(_)
            | E::MissingDelimiter
            | E::MissingHmac
            | E::InsufficientMessageParts(_)
            | E::ParseError { .. }
            | E::SerdeError(_)
    );
    if bad_message {
        let why = if matches!(e, E::VerifyError(_) | E::DecodeError(_)) {
            "its signature does not verify with the key"
        } else {
            "it is malformed"
        };
        eprintln!("retort kernel: dropped a message on the {channel} channel, not run: {why} ({e})");
    }
    bad_message
}

/// The control channel: interrupts (the running cell's training stops between batches),
/// shutdown and restart (the session's thread ends once the running cell stops), kernel info.
async fn control_loop(mut control: zmq::KernelControlConnection, interrupt: Arc<AtomicBool>, requests: mpsc::Sender<Request>) {
    loop {
        let message = match control.read().await {
            Ok(m) => m,
            Err(e) if dropped("control", &e) => continue,
            Err(_) => break,
        };
        let reply: JupyterMessage = match &message.content {
            JupyterMessageContent::InterruptRequest(_) => {
                interrupt.store(true, Ordering::SeqCst);
                InterruptReply::new().as_child_of(&message)
            }
            JupyterMessageContent::ShutdownRequest(r) => {
                interrupt.store(true, Ordering::SeqCst);
                let _ = requests.send(Request::Shutdown);
                ShutdownReply { restart: r.restart, status: ReplyStatus::Ok, error: None }.as_child_of(&message)
            }
            JupyterMessageContent::KernelInfoRequest(_) => kernel_info().as_child_of(&message),
            other => {
                eprintln!("retort kernel: ignored a '{}' on the control channel", other.message_type());
                continue;
            }
        };
        if control.send(reply).await.is_err() {
            break;
        }
    }
}

/// What the session's thread uses to answer.
struct Kernel {
    outgoing: UnboundedSender<Outgoing>,
    /// Cells run with `store_history`: execution count, code, and the value's text/plain.
    history: Vec<(usize, String, String)>,
}

/// The kernel's session number in history entries (one session per kernel process).
const HISTORY_SESSION: usize = 1;

impl Kernel {
    fn iopub(&self, m: JupyterMessage) {
        let _ = self.outgoing.send(Outgoing::IoPub(Box::new(m)));
    }

    fn reply(&self, m: JupyterMessage) {
        let _ = self.outgoing.send(Outgoing::Shell(Box::new(m)));
    }

    /// One shell request: busy, the reply (and an execution's outputs), idle. When it was an
    /// execution that failed and asked to stop on errors: the requests queued at its failure.
    fn handle(&mut self, cells: &mut Cells, request: &JupyterMessage, incoming: &mpsc::Receiver<Request>) -> Vec<Request> {
        self.iopub(Status::busy().as_child_of(request));
        let mut queued = Vec::new();
        match &request.content {
            JupyterMessageContent::KernelInfoRequest(_) => self.reply(kernel_info().as_child_of(request)),
            JupyterMessageContent::ExecuteRequest(r) => {
                let stop = r.stop_on_error.then_some(incoming);
                queued = self.execute(cells, request, &r.code, r.silent, r.store_history, stop);
            }
            JupyterMessageContent::CompleteRequest(r) => {
                let (start, matches) = complete(cells, &r.code, r.cursor_pos);
                let reply = CompleteReply {
                    matches,
                    cursor_start: start,
                    cursor_end: r.cursor_pos.min(r.code.chars().count()),
                    metadata: Default::default(),
                    status: ReplyStatus::Ok,
                    error: None,
                };
                self.reply(reply.as_child_of(request));
            }
            JupyterMessageContent::InspectRequest(r) => {
                let doc = word_at(&r.code, r.cursor_pos).and_then(|w| cells.session().doc(&w).ok());
                let reply = InspectReply {
                    found: doc.is_some(),
                    data: doc.map_or_else(Media::default, |d| Media::new(vec![MediaType::Plain(d.clone()), MediaType::Markdown(d)])),
                    metadata: Default::default(),
                    status: ReplyStatus::Ok,
                    error: None,
                };
                self.reply(reply.as_child_of(request));
            }
            JupyterMessageContent::IsCompleteRequest(r) => {
                // open brackets or strings (the REPL's rule), else the parser: out of input is
                // incomplete (`let a = 1 +`), another error invalid
                let status = if super::repl::incomplete(&r.code) {
                    IsCompleteReplyStatus::Incomplete
                } else {
                    match cells.session().parses(&r.code) {
                        Ok(()) => IsCompleteReplyStatus::Complete,
                        Err(true) => IsCompleteReplyStatus::Incomplete,
                        Err(false) => IsCompleteReplyStatus::Invalid,
                    }
                };
                let indent = if status == IsCompleteReplyStatus::Incomplete && open_brackets(&r.code) { "    " } else { "" };
                let reply = IsCompleteReply { status, indent: indent.into() };
                self.reply(reply.as_child_of(request));
            }
            JupyterMessageContent::HistoryRequest(r) => {
                self.reply(HistoryReply { history: self.history(r), status: ReplyStatus::Ok, error: None }.as_child_of(request))
            }
            JupyterMessageContent::CommInfoRequest(_) => {
                self.reply(CommInfoReply { status: ReplyStatus::Ok, comms: Default::default(), error: None }.as_child_of(request))
            }
            other => eprintln!("retort kernel: no reply to a '{}' on the shell channel", other.message_type()),
        }
        self.iopub(Status::idle().as_child_of(request));
        queued
    }

    /// An execution queued behind a failed one: not run, its reply `aborted`.
    fn abort(&self, cells: &Cells, request: &JupyterMessage) {
        self.iopub(Status::busy().as_child_of(request));
        let reply = ExecuteReply {
            status: ReplyStatus::Aborted,
            execution_count: ExecutionCount::new(cells.count),
            payload: vec![],
            user_expressions: Some(Default::default()),
            error: None,
        };
        self.reply(reply.as_child_of(request));
        self.iopub(Status::idle().as_child_of(request));
    }

    /// Runs a cell: its input and outputs on iopub as they come, then the reply (an error's
    /// name, message and traceback in it too).
    /// History entries: the last `n` (`tail`), lines `start..stop` of this session (`range`; a
    /// negative bound counts from the end), or the last `n` matching a glob pattern (`search`).
    fn history(&self, r: &HistoryRequest) -> Vec<HistoryEntry> {
        let entry = |output: bool, (line, code, value): &(usize, String, String)| {
            if output {
                HistoryEntry::InputOutput(HISTORY_SESSION, *line, (code.clone(), value.clone()))
            } else {
                HistoryEntry::Input(HISTORY_SESSION, *line, code.clone())
            }
        };
        match r {
            HistoryRequest::Tail { n, output, .. } => {
                last(self.history.iter().collect(), *n).into_iter().map(|h| entry(*output, h)).collect()
            }
            HistoryRequest::Range { session, start, stop, output, .. } => {
                if session.is_some_and(|s| s > 0 && s as usize != HISTORY_SESSION) {
                    return vec![];
                }
                let end = self.history.last().map_or(0, |h| h.0 as i32 + 1);
                let bound = |b: i32| if b < 0 { end + b } else { b };
                let (start, stop) = (bound(*start), if *stop == 0 && *start != 0 { end } else { bound(*stop) });
                self.history.iter().filter(|h| (start..stop).contains(&(h.0 as i32))).map(|h| entry(*output, h)).collect()
            }
            HistoryRequest::Search { pattern, unique, output, n, .. } => {
                let Ok(glob) = glob::Pattern::new(pattern) else { return vec![] };
                let mut seen = std::collections::HashSet::new();
                let mut found: Vec<&(usize, String, String)> =
                    self.history.iter().rev().filter(|h| glob.matches(&h.1)).filter(|h| !*unique || seen.insert(h.1.clone())).collect();
                found.reverse();
                let found = if *n > 0 { last(found, *n) } else { found };
                found.into_iter().map(|h| entry(*output, h)).collect()
            }
        }
    }

    /// Runs a cell: its input and outputs on iopub as they come, then the reply (an error's
    /// name, message and traceback in it too). When it fails and `stop_on_error` gives the
    /// request queue: the requests queued by then, taken before the reply goes out.
    fn execute(
        &mut self,
        cells: &mut Cells,
        request: &JupyterMessage,
        code: &str,
        silent: bool,
        store_history: bool,
        stop_on_error: Option<&mpsc::Receiver<Request>>,
    ) -> Vec<Request> {
        let count_before = cells.count;
        let execution_count = ExecutionCount::new(count_before + 1);
        if !silent {
            self.iopub(ExecuteInput { code: code.to_string(), execution_count }.as_child_of(request));
        }
        let error: Rc<RefCell<Option<ReplyError>>> = Rc::default();
        let value: Rc<RefCell<String>> = Rc::default();
        let (failure, parent, outgoing, result) = (error.clone(), request.clone(), self.outgoing.clone(), value.clone());
        let sink = Rc::new(move |o: CellOutput| {
            if let CellOutput::Error { ename, evalue, traceback } = &o {
                *failure.borrow_mut() = Some(ReplyError { ename: ename.clone(), evalue: evalue.clone(), traceback: traceback.clone() });
            }
            if let CellOutput::Result(data) = &o {
                if let Some(MediaType::Plain(text)) = data.content.iter().find(|m| matches!(m, MediaType::Plain(_))) {
                    *result.borrow_mut() = text.clone();
                }
            }
            if !silent {
                let _ = outgoing.send(Outgoing::IoPub(Box::new(message(o, execution_count, &parent))));
            }
        });
        let ran = if silent { cells.run_silently(code, sink) } else { cells.run(code, false, sink) };
        if !silent && store_history {
            self.history.push((cells.count, code.to_string(), value.take()));
        }
        let error = error.take().filter(|_| !ran.ok);
        let queued = match stop_on_error {
            Some(incoming) if !ran.ok => std::iter::from_fn(|| incoming.try_recv().ok()).collect(),
            _ => Vec::new(),
        };
        let reply = ExecuteReply {
            status: if error.is_some() { ReplyStatus::Error } else { ReplyStatus::Ok },
            execution_count,
            payload: vec![],
            user_expressions: Some(Default::default()),
            error: error.map(Box::new),
        };
        self.reply(reply.as_child_of(request));
        queued
    }
}

/// The last `n` items.
fn last<T>(mut items: Vec<T>, n: i32) -> Vec<T> {
    items.drain(..items.len().saturating_sub(n.max(0) as usize));
    items
}

/// A cell output as its iopub message.
fn message(o: CellOutput, execution_count: ExecutionCount, parent: &JupyterMessage) -> JupyterMessage {
    let transient = |id: Option<String>| id.map(|display_id| Transient { display_id: Some(display_id) });
    match o {
        CellOutput::Stream(text) => StreamContent::stdout(&text).as_child_of(parent),
        CellOutput::Display { data, display_id } => {
            DisplayData { data, metadata: Default::default(), transient: transient(display_id) }.as_child_of(parent)
        }
        CellOutput::Update { data, display_id } => UpdateDisplayData::new(data, &display_id).as_child_of(parent),
        CellOutput::Result(data) => {
            // an empty `transient`, not null: the protocol's schema wants an object
            ExecuteResult { execution_count, data, metadata: Default::default(), transient: Some(Transient { display_id: None }) }
                .as_child_of(parent)
        }
        CellOutput::Error { ename, evalue, traceback } => ErrorOutput { ename, evalue, traceback }.as_child_of(parent),
    }
}

/// `kernel_info_reply`: the language is Rhai, highlighted as Rust (its syntax is close).
fn kernel_info() -> KernelInfoReply {
    KernelInfoReply {
        status: ReplyStatus::Ok,
        protocol_version: "5.3".into(),
        implementation: "retort".into(),
        implementation_version: env!("CARGO_PKG_VERSION").into(),
        language_info: LanguageInfo {
            name: "rhai".into(),
            version: retort::script::RHAI_VERSION.into(),
            mimetype: Some(ipynb::MIMETYPE.into()),
            file_extension: Some(".rhai".into()),
            pygments_lexer: Some("rust".into()),
            codemirror_mode: Some(CodeMirrorMode::Simple("rust".into())),
            nbconvert_exporter: None,
        },
        banner: format!(
            "retort {}: knowledge distillation from Rhai scripts (`:doc`-style help: Shift-Tab on a name)",
            env!("CARGO_PKG_VERSION")
        ),
        help_links: vec![],
        debugger: false,
        error: None,
    }
}

/// Whether `code` ends inside brackets (the next line is indented), not only inside a string.
fn open_brackets(code: &str) -> bool {
    let opened = code.chars().filter(|c| matches!(c, '(' | '[' | '{')).count();
    let closed = code.chars().filter(|c| matches!(c, ')' | ']' | '}')).count();
    opened > closed
}

/// The byte offset of the `chars`-th character (Jupyter counts cursor positions in characters).
fn byte_at(code: &str, chars: usize) -> usize {
    code.char_indices().nth(chars).map_or(code.len(), |(i, _)| i)
}

/// Completions at a cursor (in characters) of a multi-line cell: the REPL's, on the cursor's
/// line; the start of the completed word, in characters.
pub fn complete(cells: &Cells, code: &str, cursor: usize) -> (usize, Vec<String>) {
    let at = byte_at(code, cursor);
    let line_start = code[..at].rfind('\n').map_or(0, |i| i + 1);
    let line_end = code[at..].find('\n').map_or(code.len(), |i| at + i);
    let (start, names) = cells.session().complete(&code[line_start..line_end], at - line_start);
    (code[..line_start + start].chars().count(), names)
}

/// The name under (or just before) a cursor in characters: letters, digits, `_` and `::`.
pub fn word_at(code: &str, cursor: usize) -> Option<String> {
    let at = byte_at(code, cursor);
    let part = |c: char| c.is_alphanumeric() || c == '_' || c == ':';
    let start = code[..at].rfind(|c: char| !part(c)).map_or(0, |i| i + code[i..].chars().next().map_or(1, char::len_utf8));
    let end = code[at..].find(|c: char| !part(c)).map_or(code.len(), |i| at + i);
    let word = code[start..end].trim_matches(':');
    (!word.is_empty()).then(|| word.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_word_under_the_cursor() {
        assert_eq!(word_at("let m = model(\"cnn\")", 10).as_deref(), Some("model"));
        assert_eq!(word_at("sched::cosine(1)", 3).as_deref(), Some("sched::cosine"));
        assert_eq!(word_at("fit", 3).as_deref(), Some("fit"));
        assert_eq!(word_at("  ", 1), None);
        // cursor positions count characters, not bytes
        assert_eq!(word_at("\"é\"; fit(x)", 7).as_deref(), Some("fit"));
    }
}
