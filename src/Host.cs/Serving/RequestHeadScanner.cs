using System.Buffers;
using System.Collections.Concurrent;
using System.IO.Pipelines;
using System.Runtime.InteropServices;
using System.Text;
using Lb.Rules;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Lb.Host.Serving;

/// <summary>
/// What an HTTP/1.1 request head said that Kestrel does not keep: the Connection field values as received (Kestrel
/// hands the app `close` alone for `Connection: close, X-Hop` and for `X-Hop` + `close` on two lines, so the X-Hop
/// option would be lost). One entry per request head, in the order the connection carried them; the app takes one
/// per request with <see cref="Take"/>.
/// </summary>
public sealed class RequestHeads
{
    private readonly ConcurrentQueue<string[]> _connection = new();

    /// <summary>`Connection: keep-alive` alone, shared by every request that says only that.</summary>
    internal static readonly string[] KeepAlive = ["keep-alive"];

    internal void Add(string[] connectionValues) => _connection.Enqueue(connectionValues);

    /// <summary>The next request's raw Connection values (empty when it had none), or null when the scanner stopped
    /// reading the connection (after an Upgrade head).</summary>
    public string[]? Take() => _connection.TryDequeue(out var values) ? values : null;

    /// <summary>
    /// Middleware, first in the pipeline: takes this request's entry (every request the app sees takes exactly one,
    /// in order; Kestrel closes the connection after any head it refuses) and sets it as <see cref="ReceivedConnection"/>.
    /// </summary>
    public static Task Attach(HttpContext context, RequestDelegate next)
    {
        if (context.Features.Get<IConnectionItemsFeature>()?.Items.TryGetValue(typeof(RequestHeads), out var found) == true
            && found is RequestHeads heads && heads.Take() is { } values)
            context.Features.Set(values.Length == 0 ? ReceivedConnection.None
                : ReferenceEquals(values, KeepAlive) ? ReceivedConnection.KeepAliveOnly
                : new ReceivedConnection(values));
        return next(context);
    }
}

/// <summary>A request's Connection field values as they came off the wire (HTTP/1.1 only; absent on HTTP/2).</summary>
public sealed record ReceivedConnection(string[] Values)
{
    /// <summary>A request without a Connection field.</summary>
    public static readonly ReceivedConnection None = new([]);

    /// <summary>A request whose Connection field says `keep-alive` alone.</summary>
    public static readonly ReceivedConnection KeepAliveOnly = new(RequestHeads.KeepAlive);

    /// <summary>The values as received, or Kestrel's (HTTP/2, where RFC 9113 §8.2.2 forbids the field anyway).</summary>
    public static string[] Of(HttpContext context) =>
        context.Features.Get<ReceivedConnection>()?.Values ?? Lb.Host.Forwarding.PrefixTransformer.NonNull(context.Request.Headers.Connection);
}

/// <summary>
/// A Kestrel connection middleware for HTTP/1.1 (after TLS; HTTP/2 connections pass untouched) that reads each request
/// head as it arrives, before Kestrel parses it, and follows the message framing to find the next head (a body is
/// skipped by its Content-Length or its chunks, never scanned):
///   1. a Content-Length value that is not 1*DIGIT (<see cref="HopByHop.IsValidContentLength"/>; RFC 9112 §6.3) gets its
///      first byte overwritten with `x` before Kestrel sees the line, so Kestrel itself answers 400 and closes, as it
///      does for every other broken length. Kestrel's own parser reads `+5` and `-0` as numbers, and lb forwarded them;
///   2. the Connection values go to <see cref="RequestHeads"/> as received.
/// After an Upgrade or CONNECT head the rest of the connection is opaque and passes unread.
/// </summary>
public static class RequestHeadScanner
{
    /// <summary>Adds the scanner to a listener; call it after UseHttps so it reads the decrypted bytes.</summary>
    public static void Use(ListenOptions listen) => listen.Use(next => connection =>
    {
        if (connection.Features.Get<Microsoft.AspNetCore.Server.Kestrel.Core.Features.ITlsApplicationProtocolFeature>() is { } alpn && alpn.ApplicationProtocol.Span.SequenceEqual("h2"u8))
            return next(connection);
        var heads = new RequestHeads();
        connection.Items[typeof(RequestHeads)] = heads;
        connection.Transport = new ScannedPipe(connection.Transport, new Http1Framing(heads));
        return next(connection);
    });

    private sealed class ScannedPipe(IDuplexPipe inner, Http1Framing framing) : IDuplexPipe
    {
        public PipeReader Input { get; } = new ScanningReader(inner.Input, framing);
        public PipeWriter Output => inner.Output;
    }

    /// <summary>Feeds every byte to the framing once, the first time a read returns it; nothing else changes.</summary>
    private sealed class ScanningReader(PipeReader inner, Http1Framing framing) : PipeReader
    {
        private ReadOnlySequence<byte> _last;
        // Bytes at the start of the unconsumed data already fed to the framing.
        private long _scanned;

        public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
        {
            var read = inner.ReadAsync(cancellationToken);
            if (!read.IsCompletedSuccessfully)
                return Slow(read);
            var result = read.Result;
            Scan(result.Buffer);
            return new ValueTask<ReadResult>(result);
        }

        private async ValueTask<ReadResult> Slow(ValueTask<ReadResult> read)
        {
            var result = await read;
            Scan(result.Buffer);
            return result;
        }

        public override bool TryRead(out ReadResult result)
        {
            if (!inner.TryRead(out result))
                return false;
            Scan(result.Buffer);
            return true;
        }

        private void Scan(ReadOnlySequence<byte> buffer)
        {
            _last = buffer;
            if (_scanned < buffer.Length)
            {
                framing.Feed(buffer.Slice(_scanned));
                _scanned = buffer.Length;
            }
        }

        public override void AdvanceTo(SequencePosition consumed) => AdvanceTo(consumed, consumed);

        public override void AdvanceTo(SequencePosition consumed, SequencePosition examined)
        {
            _scanned -= _last.Slice(_last.Start, consumed).Length;
            _last = default;
            inner.AdvanceTo(consumed, examined);
        }

        public override void CancelPendingRead() => inner.CancelPendingRead();
        public override void Complete(Exception? exception = null) => inner.Complete(exception);
        public override ValueTask CompleteAsync(Exception? exception = null) => inner.CompleteAsync(exception);
    }
}

/// <summary>
/// RFC 9112's message framing for requests, one byte at a time: request line, field lines, then the body by
/// Transfer-Encoding (chunked, §7.1) or Content-Length (§6.3), then the next request. It only has to agree with
/// Kestrel on well-formed messages: a malformed one makes Kestrel answer 400 and close, so what is read after it
/// never matters. Public for its tests (Host.Tests Serving/RequestHeadScannerTests).
/// </summary>
public sealed class Http1Framing(RequestHeads heads)
{
    private enum State { MessageStart, RequestLine, LineStart, Name, Value, SkipLine, Body, ChunkSize, ChunkExtension, ChunkData, ChunkDataEnd, TrailerStart, TrailerLine, Opaque }

    private const int LongestValue = 8 * 1024;
    private State _state = State.MessageStart;
    // The field name so far, when it crosses reads; only names as long as the longest one of interest are kept.
    private readonly byte[] _name = new byte[LongestName];
    private int _nameLength;
    private const int LongestName = 17; // transfer-encoding
    private readonly List<byte> _value = new(64);
    private bool _valueStarted;
    // Where the current Content-Length value's first byte is, until its line ends.
    private ReadOnlyMemory<byte> _valueSegment;
    private int _valueIndex = -1;
    private Field _field;
    private bool _chunked, _upgrade, _connect;
    private long _length = -1, _remaining;
    private readonly List<string> _connection = [];
    private int _requestLineAt;

    private enum Field { Other, ContentLength, TransferEncoding, Connection, Upgrade }

    public void Feed(ReadOnlySequence<byte> bytes)
    {
        foreach (var segment in bytes)
        {
            var span = segment.Span;
            for (var i = 0; i < span.Length; i++)
            {
                switch (_state)
                {
                    case State.Opaque:
                        return;
                    case State.Body:
                    case State.ChunkData:
                        // Never expected (sizes are capped and checked), but a count that is not positive would never
                        // end the body: stop reading the connection rather than spin.
                        if (_remaining <= 0)
                        {
                            _state = State.Opaque;
                            return;
                        }
                        var take = (int)Math.Min(_remaining, span.Length - i);
                        _remaining -= take;
                        i += take - 1;
                        if (_remaining == 0)
                            _state = _state == State.Body ? State.MessageStart : State.ChunkDataEnd;
                        break;
                    // Lines whose bytes matter only for their end: jump to the LF (vectorised), then step on it.
                    case State.SkipLine:
                    case State.TrailerLine:
                    case State.ChunkExtension:
                    case State.ChunkDataEnd:
                    case State.RequestLine when _requestLineAt >= 8:
                        var lf = span[i..].IndexOf((byte)'\n');
                        if (lf < 0)
                        {
                            i = span.Length;
                            break;
                        }
                        i += lf;
                        Step(span[i], segment, i);
                        break;
                    // A field line whose name is all in this read: find the colon instead of reading the name.
                    case State.LineStart when span.Length - i > LongestName && span[i] is not ((byte)'\r' or (byte)'\n'):
                        var end = span.Slice(i, LongestName + 1).IndexOfAny((byte)':', (byte)'\n');
                        if (end < 0)
                        {
                            _state = State.SkipLine; // longer than any field of interest
                            i--;
                        }
                        else if (span[i + end] == '\n')
                            i += end; // a line without a colon (Kestrel refuses it); the next one starts after it
                        else
                        {
                            StartValue(Classify(span.Slice(i, end)));
                            i += end;
                        }
                        break;
                    default:
                        Step(span[i], segment, i);
                        break;
                }
            }
        }
    }

    private void Step(byte b, ReadOnlyMemory<byte> segment, int index)
    {
        switch (_state)
        {
            case State.MessageStart:
                // RFC 9112 §2.2: empty lines before the request line are ignored.
                if (b is (byte)'\r' or (byte)'\n')
                    return;
                _chunked = _upgrade = _connect = false;
                _length = -1;
                _connection.Clear();
                _requestLineAt = 0;
                _state = State.RequestLine;
                goto case State.RequestLine;
            case State.RequestLine:
                // CONNECT (RFC 9110 §9.3.6): after the head the connection is a tunnel.
                if (_requestLineAt < 8)
                    _connect = _requestLineAt == 0 ? b == 'C' : _connect && b == "CONNECT "[_requestLineAt];
                _requestLineAt++;
                if (b == '\n')
                    _state = State.LineStart;
                return;
            case State.LineStart:
                if (b == '\r')
                    return;
                if (b == '\n')
                {
                    EndOfHead();
                    return;
                }
                _nameLength = 0;
                _state = State.Name;
                goto case State.Name;
            case State.Name:
                if (b == ':')
                    StartValue(Classify(_name.AsSpan(0, _nameLength)));
                else if (b == '\n')
                    _state = State.LineStart; // no colon: Kestrel refuses the request
                else if (_nameLength < LongestName)
                    _name[_nameLength++] = b;
                else
                    _state = State.SkipLine; // longer than any field of interest (a colon-less line: Kestrel refuses it)
                return;
            case State.Value:
                if (b == '\n')
                {
                    EndOfField();
                    _state = State.LineStart;
                    return;
                }
                if (!_valueStarted && b is (byte)' ' or (byte)'\t')
                    return;
                if (!_valueStarted)
                {
                    _valueStarted = true;
                    _valueSegment = segment;
                    _valueIndex = index;
                }
                if (_value.Count < LongestValue)
                    _value.Add(b);
                return;
            case State.SkipLine:
                if (b == '\n')
                    _state = State.LineStart;
                return;
            case State.ChunkSize:
                var digit = HexDigit(b);
                if (digit >= 0)
                {
                    // A size of 2^59 or more is refused by Kestrel; the rest of the connection is then never read. The
                    // cap holds before the shift, so the size never overflows into a negative count (which would stop
                    // the body states from ever moving on).
                    _remaining = _remaining >= (1L << 59) ? _remaining : (_remaining << 4) | (uint)digit;
                    return;
                }
                if (b == '\n')
                    EndOfChunkSize();
                else
                    _state = State.ChunkExtension;
                return;
            case State.ChunkExtension:
                if (b == '\n')
                    EndOfChunkSize();
                return;
            case State.ChunkDataEnd:
                if (b == '\n')
                {
                    _remaining = 0;
                    _state = State.ChunkSize;
                }
                return;
            case State.TrailerStart:
                if (b == '\r')
                    return;
                _state = b == '\n' ? State.MessageStart : State.TrailerLine;
                return;
            case State.TrailerLine:
                if (b == '\n')
                    _state = State.TrailerStart;
                return;
        }
    }

    private void EndOfChunkSize()
    {
        if (_remaining == 0)
            _state = State.TrailerStart;
        else
            _state = State.ChunkData;
    }

    private static int HexDigit(byte b) => b switch
    {
        >= (byte)'0' and <= (byte)'9' => b - '0',
        >= (byte)'a' and <= (byte)'f' => b - 'a' + 10,
        >= (byte)'A' and <= (byte)'F' => b - 'A' + 10,
        _ => -1,
    };

    private void StartValue(Field field)
    {
        _field = field;
        _value.Clear();
        _valueStarted = false;
        _valueIndex = -1;
        _state = field == Field.Other ? State.SkipLine : State.Value;
    }

    /// <summary>Field names are case-insensitive (RFC 9110 §5.1).</summary>
    private static Field Classify(ReadOnlySpan<byte> name) =>
        Ascii.EqualsIgnoreCase(name, "content-length"u8) ? Field.ContentLength
        : Ascii.EqualsIgnoreCase(name, "transfer-encoding"u8) ? Field.TransferEncoding
        : Ascii.EqualsIgnoreCase(name, "connection"u8) ? Field.Connection
        : Ascii.EqualsIgnoreCase(name, "upgrade"u8) ? Field.Upgrade
        : Field.Other;

    private void EndOfField()
    {
        var count = _value.Count;
        if (count > 0 && _value[count - 1] == '\r')
            count--;
        var bytes = CollectionsMarshal.AsSpan(_value)[..count];
        // What nearly every HTTP/1.1 request says: no string allocated for it.
        var value = bytes.SequenceEqual("keep-alive"u8) ? RequestHeads.KeepAlive[0] : Encoding.Latin1.GetString(bytes);
        switch (_field)
        {
            case Field.ContentLength:
                if (_value.Count >= LongestValue || !HopByHop.IsValidContentLength(value))
                {
                    // Overwritten in place, before Kestrel parses the line (it parses only complete lines, and this
                    // line's end is in the bytes being returned to it now): the pipe's memory is the client's bytes,
                    // read by no one else.
                    if (_valueIndex >= 0)
                        MemoryMarshal.AsMemory(_valueSegment).Span[_valueIndex] = (byte)'x';
                    _length = -1;
                }
                else if (long.TryParse(value.AsSpan().Trim(" \t"), out var length))
                    _length = length;
                break;
            case Field.TransferEncoding:
                _chunked = true; // Kestrel frames by chunked or refuses the request (RFC 9112 §6.1)
                break;
            case Field.Connection:
                _connection.Add(value);
                break;
            case Field.Upgrade:
                _upgrade = true;
                break;
        }
        _valueSegment = default;
        _valueIndex = -1;
    }

    private void EndOfHead()
    {
        heads.Add(_connection.Count switch
        {
            0 => [],
            1 when ReferenceEquals(_connection[0], RequestHeads.KeepAlive[0]) => RequestHeads.KeepAlive,
            _ => _connection.ToArray(),
        });
        if (_upgrade || _connect)
            _state = State.Opaque;
        else if (_chunked)
        {
            _remaining = 0;
            _state = State.ChunkSize;
        }
        else if (_length > 0)
        {
            _remaining = _length;
            _state = State.Body;
        }
        else
            _state = State.MessageStart;
    }
}
