using System.Collections.Concurrent;
using Lb.Host.Forwarding;
using Lb.Rules;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.FSharp.Core;
using Yarp.ReverseProxy.Forwarder;

namespace Lb.Host.Caching;

/// <summary>
/// The shared HTTP cache (RFC 9111) of the apps with <c>cache = true</c>. It sits after routing and before
/// persistence and balancing; every decision is <see cref="CachePolicy"/>'s, this class only moves bytes:
///   1. <see cref="LookupAsync"/>, before forwarding: classify the request; look its key up (memory, then disk);
///      answer a hit (X-Cache: HIT, Age) without touching a backend, or a 504 for only-if-cached; answer a stale
///      entry within its stale-while-revalidate (X-Cache: STALE) and start one background revalidation of it;
///      or mark the stored response for validation;
///   2. <see cref="OnRequest"/>, per attempt: send the cache's validators instead of the client's;
///   3. <see cref="OnResponse"/>, when headers arrive (after the prefix rewrites): a 304 to a validation
///      refreshes the entry; a 500/502/503/504 within the stored response's stale-if-error keeps the backend's
///      body from the client; a storable response gets its body copied on its way to the client (X-Cache: MISS);
///   4. <see cref="CompleteAsync"/>, after forwarding: store the copy if the body arrived whole, answer a
///      refreshed entry (X-Cache: REVALIDATED) or the stale one instead of the error (X-Cache: STALE), or
///      invalidate the target after an unsafe request.
/// </summary>
public sealed class HttpCache : IAsyncDisposable
{
    public const string ContextKey = "lb.cache";

    private readonly CacheConfig _config;
    private readonly bool _anyApp;
    private readonly TimeProvider _time;
    private readonly ErrorPages _errorPages;
    private readonly MemoryStore _memory;
    private readonly DiskStore? _disk;
    private readonly IServiceProvider _services;
    private readonly ILogger<HttpCache> _log;

    /// <summary>The keys with a background revalidation under way: one at a time per entry (RFC 5861 §3).</summary>
    private readonly ConcurrentDictionary<string, byte> _revalidating = new();

    public HttpCache(LbConfig config, TimeProvider time, ErrorPages errorPages, IServiceProvider services, ILogger<HttpCache> log)
    {
        _services = services;
        _log = log;
        _config = config.Cache;
        _anyApp = config.Apps.Any(a => a.Cache);
        _time = time;
        _errorPages = errorPages;
        _memory = new MemoryStore(_config.MemoryBytes);
        if (_anyApp && _config.Dir is { } dir)
            _disk = DiskStore.Open(dir.Value, _config.DiskBytes, log);
    }

    /// <summary>The memory store: its bound, bytes and entries (for stats and tests).</summary>
    public MemoryStore Memory => _memory;

    /// <summary>The disk store, when <c>[cache] dir</c> is set and an app is cached.</summary>
    public DiskStore? Disk => _disk;

    /// <summary>
    /// Handles a request the cache makes itself (a background revalidation) as if a client had sent it: routing,
    /// balancing, forwarding, this cache. Set once by the composition root (lb's endpoint); without it no
    /// background revalidation runs, and a stale entry is validated when its stale-while-revalidate is over.
    /// </summary>
    public Func<HttpContext, Task>? Send { get; set; }

    /// <summary>Background revalidations under way (for tests).</summary>
    public int Revalidating => _revalidating.Count;

    public static CacheExchange? ExchangeOf(HttpContext context) =>
        context.Items.TryGetValue(ContextKey, out var value) ? value as CacheExchange : null;

    /// <summary>Wraps the forwarding transformer so that responses of cached apps pass through the cache.</summary>
    public HttpTransformer Wrap(HttpTransformer inner) => _anyApp ? new CachingTransformer(inner, this) : inner;

    // ---- 1. Before forwarding -------------------------------------------------------------------------

    /// <summary>
    /// Null when the app is not cached. Otherwise the request's exchange; <see cref="CacheExchange.Answered"/>
    /// when the response has been written from the cache and nothing is to be forwarded.
    /// </summary>
    public async Task<CacheExchange?> LookupAsync(HttpContext context, ForwardPlan plan)
    {
        if (!plan.App.Cache)
            return null;
        var request = RequestOf(context, plan);
        var exchange = new CacheExchange(request, CachePolicy.Classify(request));
        context.Items[ContextKey] = exchange;
        if (!exchange.Kind.IsCacheable)
            return exchange;

        var (key, found) = await FindAsync(request, context.RequestAborted);
        var stored = found is null ? FSharpOption<StoredResponse>.None : FSharpOption<StoredResponse>.Some(found.Stored);
        exchange.Stale = found;
        switch (CachePolicy.Decide(request, stored, _time.GetUtcNow()))
        {
            case CacheUse.Hit hit:
                await WriteAsync(context, found!, hit.age, hit.notModified, "HIT");
                exchange.Answered = true;
                break;
            case CacheUse.HitWhileRevalidating stale:
                RevalidateInBackground(context, request, key);
                await WriteAsync(context, found!, stale.age, stale.notModified, "STALE");
                exchange.Answered = true;
                break;
            case CacheUse.Validate validate:
                exchange.Validating = found;
                exchange.ValidatingKey = key;
                exchange.Conditionals = validate.conditionals;
                break;
            case var use when use.IsGatewayTimeout:
                await _errorPages.WriteAsync(context, StatusCodes.Status504GatewayTimeout, "only-if-cached: not in the cache");
                exchange.Answered = true;
                break;
        }
        return exchange;
    }

    /// <summary>The stored response for the request: under its primary key, or under its variant key when the
    /// primary key holds Vary names. Returns the key it was found under.</summary>
    private async Task<(string Key, CachedResponse? Found)> FindAsync(CacheRequest request, CancellationToken cancel)
    {
        var key = CachePolicy.PrimaryKey(request);
        var item = await GetAsync(key, cancel);
        if (item is CachedVariants variants)
        {
            key = CachePolicy.VariantKey(request, variants.Names);
            item = await GetAsync(key, cancel);
        }
        return (key, item as CachedResponse);
    }

    private async ValueTask<CacheItem?> GetAsync(string key, CancellationToken cancel)
    {
        if (_memory.Get(key) is { } item)
            return item;
        if (_disk is null || await _disk.GetAsync(key, cancel) is not { } fromDisk)
            return null;
        _memory.Set(key, fromDisk);
        return fromDisk;
    }

    private static CacheRequest RequestOf(HttpContext context, ForwardPlan plan)
    {
        var request = context.Request;
        var headers = new List<Tuple<string, string>>(request.Headers.Count);
        foreach (var (name, values) in request.Headers)
            foreach (var value in values)
                if (value is not null)
                    headers.Add(Tuple.Create(name, value));
        return new CacheRequest(plan.App, request.Method, request.Scheme, request.Host.Value ?? "", plan.BackendTarget, headers.ToArray());
    }

    // ---- 2. Each attempt ------------------------------------------------------------------------------

    internal void OnRequest(CacheExchange exchange, HttpRequestMessage proxyRequest)
    {
        exchange.SentAt = _time.GetUtcNow();
        if (exchange.Validating is null)
            return;
        // The backend's 304 must be about the stored response, so only the cache's validators go out.
        foreach (var name in new[] { "If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since", "If-Range" })
            proxyRequest.Headers.Remove(name);
        foreach (var (name, value) in exchange.Conditionals)
            proxyRequest.Headers.TryAddWithoutValidation(name, value);
    }

    // ---- 3. Response headers --------------------------------------------------------------------------

    /// <summary>Returns whether YARP copies the backend's body (false for a 304 that refreshed an entry).</summary>
    internal bool OnResponse(HttpContext context, CacheExchange exchange, HttpResponseMessage proxyResponse, bool proceed)
    {
        if (!exchange.Kind.IsCacheable)
            return proceed;
        var now = _time.GetUtcNow();
        var (headers, insertedCookie) = ResponseHeaders(context, proxyResponse);
        var status = context.Response.StatusCode;
        if (exchange.Validating is { } validating && status == StatusCodes.Status304NotModified)
        {
            var refreshed = validating with { Stored = CachePolicy.Refresh(validating.Stored, headers, exchange.SentAt, now) };
            if (CachePolicy.Storability(exchange.Request, refreshed.Stored.Response).IsStore)
                Put(exchange.Request, refreshed);
            else
                Remove(exchange.ValidatingKey!);
            exchange.Refreshed = refreshed;
            exchange.InsertedCookie = insertedCookie;
            context.Response.Headers.Clear();
            return false;
        }
        exchange.Validating = null;
        if (proceed && exchange.Stale is { } stale && CachePolicy.StaleOnError(exchange.Request, stale.Stored, status, now))
        {
            exchange.ServeStale = stale;
            exchange.InsertedCookie = insertedCookie;
            context.Response.Headers.Clear();
            return false;
        }
        var response = new CacheResponse(status, CachePolicy.StoredHeaders(headers));
        var fits = context.Response.ContentLength is not { } length || length <= _config.MaxEntryBytes;
        if (proceed && fits && CachePolicy.Storability(exchange.Request, response).IsStore)
        {
            exchange.Candidate = new StoredResponse(response, exchange.SentAt, now);
            exchange.Capture = new CaptureStream(context.Response.Body, _config.MaxEntryBytes);
            context.Response.Body = exchange.Capture;
        }
        if (_config.XCacheHeader)
            context.Response.Headers["X-Cache"] = "MISS";
        return proceed;
    }

    /// <summary>
    /// The response's header lines as the cache keeps them: as the client gets them (after the prefix rewrites)
    /// but without what lb added for this one client's persistence — its Set-Cookie line and the Cache-Control
    /// it rewrote (`private`), for which the backend's own Cache-Control lines stand. Also returns that cookie.
    /// </summary>
    private static (Tuple<string, string>[] Headers, string? InsertedCookie) ResponseHeaders(HttpContext context, HttpResponseMessage proxyResponse)
    {
        var inserted = context.Features.Get<ForwardContext>() is { InsertCookie: true } forward
            ? forward.PersistenceCookie(context.Request.IsHttps)
            : null;
        var headers = new List<Tuple<string, string>>();
        foreach (var (name, values) in context.Response.Headers)
        {
            var isCacheControl = string.Equals(name, "Cache-Control", StringComparison.OrdinalIgnoreCase);
            if (inserted is not null && isCacheControl)
                continue;
            var isSetCookie = string.Equals(name, "Set-Cookie", StringComparison.OrdinalIgnoreCase);
            foreach (var v in values)
                if (v is not null && !(isSetCookie && v == inserted))
                    headers.Add(Tuple.Create(name, v));
        }
        if (inserted is not null && proxyResponse.Headers.NonValidated.TryGetValues("Cache-Control", out var backend))
            foreach (var v in backend)
                headers.Add(Tuple.Create("Cache-Control", v));
        return (headers.ToArray(), inserted);
    }

    /// <summary>
    /// When no response came at all (no server, every attempt failed, a queue timed out), the stale entry found
    /// for the request answers instead of lb's error page if its stale-if-error allows it (RFC 5861 §4, status 0
    /// in <see cref="CachePolicy.StaleOnError"/>). False when it does not, or the response has started.
    /// </summary>
    public async Task<bool> AnswerInsteadOfErrorAsync(HttpContext context, CacheExchange? exchange)
    {
        if (exchange?.Stale is not { } stale || context.Response.HasStarted)
            return false;
        var now = _time.GetUtcNow();
        if (!CachePolicy.StaleOnError(exchange.Request, stale.Stored, 0, now))
            return false;
        await WriteAsync(context, stale, CachePolicy.CurrentAge(stale.Stored, now), CachePolicy.NotModified(exchange.Request, stale.Stored), "STALE");
        return true;
    }

    // ---- 4. After forwarding --------------------------------------------------------------------------

    public async Task CompleteAsync(HttpContext context, CacheExchange exchange)
    {
        try
        {
            var failed = context.Features.Get<IForwarderErrorFeature>() is not null || context.RequestAborted.IsCancellationRequested;
            if (failed)
                return;
            if (exchange.Kind.IsUnsafe)
            {
                foreach (var key in CachePolicy.InvalidatedKeys(exchange.Request, context.Response.StatusCode))
                    Remove(key);
                return;
            }
            if (exchange.Refreshed is { } refreshed)
            {
                await WriteRevalidatedAsync(context, exchange, refreshed);
                return;
            }
            if (exchange.ServeStale is { } stale)
            {
                var age = CachePolicy.CurrentAge(stale.Stored, _time.GetUtcNow());
                await WriteAsync(context, stale, age, CachePolicy.NotModified(exchange.Request, stale.Stored), "STALE", exchange.InsertedCookie);
                return;
            }
            if (exchange is { Candidate: { } candidate, Capture: { Overflowed: false } capture }
                && CachePolicy.IsComplete(exchange.Request.Method, candidate.Response, capture.Captured))
                Put(exchange.Request, new CachedResponse(candidate, capture.ToArray()));
        }
        finally
        {
            if (exchange.Capture is { } capture)
                context.Response.Body = capture.Inner;
        }
    }

    private async Task WriteRevalidatedAsync(HttpContext context, CacheExchange exchange, CachedResponse refreshed)
    {
        var age = CachePolicy.CurrentAge(refreshed.Stored, _time.GetUtcNow());
        var notModified = CachePolicy.NotModified(exchange.Request, refreshed.Stored);
        await WriteAsync(context, refreshed, age, notModified, "REVALIDATED", exchange.InsertedCookie);
    }

    /// <summary>Writes a stored response (or the 304 for the client's own conditional) to the client.</summary>
    private async Task WriteAsync(HttpContext context, CachedResponse entry, TimeSpan age, bool notModified, string outcome,
        string? insertedCookie = null)
    {
        var response = context.Response;
        response.Headers.Clear();
        response.StatusCode = notModified ? StatusCodes.Status304NotModified : entry.Stored.Response.Status;
        var headers = notModified ? CachePolicy.NotModifiedHeaders(entry.Stored, age) : CachePolicy.ServedHeaders(entry.Stored, age);
        foreach (var (name, value) in headers)
            response.Headers.Append(name, value);
        if (insertedCookie is not null)
        {
            // As PrefixTransformer does on any response that pins a client: the cookie, and private.
            response.Headers.Append("Set-Cookie", insertedCookie);
            response.Headers.CacheControl = Persistence.CacheControlWithPrivate(
                response.Headers.CacheControl.Where(v => v is not null).Select(v => v!).ToArray());
        }
        if (_config.XCacheHeader)
            response.Headers["X-Cache"] = outcome;
        var hasBody = !notModified && response.StatusCode is not (StatusCodes.Status204NoContent or StatusCodes.Status304NotModified);
        if (!hasBody)
        {
            response.Headers.ContentLength = null;
            return;
        }
        if (HttpMethods.IsHead(context.Request.Method))
            return;
        response.ContentLength = entry.Body.Length;
        await response.Body.WriteAsync(entry.Body, context.RequestAborted);
    }

    // ---- Background revalidation (RFC 5861 §3) -------------------------------------------------------

    /// <summary>
    /// Starts one request for the stale entry under <paramref name="key"/>, unless one is under way: a copy of the
    /// client's (method, target, client address) with <see cref="CachePolicy.RevalidationHeaders"/>, so its own
    /// <see cref="CachePolicy.Decide"/> validates (or fetches) and its answer refreshes or replaces the entry as a
    /// foreground validation's would. It goes through routing and balancing like any request (and is
    /// counted and logged as one); its response goes nowhere.
    /// </summary>
    private void RevalidateInBackground(HttpContext context, CacheRequest request, string key)
    {
        if (Send is not { } send || !_revalidating.TryAdd(key, 0))
            return;
        var copy = BackgroundCopy(context, request);
        _ = Task.Run(async () =>
        {
            try
            {
                await send(copy);
            }
            catch (Exception e)
            {
                _log.LogWarning(e, "background revalidation of {Target} failed", copy.Request.Path + copy.Request.QueryString);
            }
            finally
            {
                _revalidating.TryRemove(key, out _);
            }
        });
    }

    private HttpContext BackgroundCopy(HttpContext context, CacheRequest cacheRequest)
    {
        var source = context.Request;
        var copy = new DefaultHttpContext { RequestServices = _services };
        var request = copy.Request;
        foreach (var (name, value) in CachePolicy.RevalidationHeaders(cacheRequest.Headers))
            request.Headers.Append(name, value);
        request.Method = source.Method;
        request.Scheme = source.Scheme;
        // After the headers: the setter replaces the Host line the loop copied, rather than adding a second.
        request.Host = source.Host;
        request.PathBase = source.PathBase;
        request.Path = source.Path;
        request.QueryString = source.QueryString;
        // lb's own request, not the client's stream: HTTP/1.1 whatever the client spoke (the backend protocol is
        // the app's, set by forwarding).
        request.Protocol = HttpProtocol.Http11;
        if (context.Features.Get<IHttpRequestFeature>()?.RawTarget is { } rawTarget)
            copy.Features.Get<IHttpRequestFeature>()!.RawTarget = rawTarget;
        copy.Connection.RemoteIpAddress = context.Connection.RemoteIpAddress;
        copy.Connection.RemotePort = context.Connection.RemotePort;
        copy.Connection.LocalIpAddress = context.Connection.LocalIpAddress;
        copy.Connection.LocalPort = context.Connection.LocalPort;
        return copy;
    }

    // ---- The stores -----------------------------------------------------------------------------------

    /// <summary>Stores a response under its key; with Vary, the names under the primary key and the response
    /// under the variant key of this request.</summary>
    private void Put(CacheRequest request, CachedResponse entry)
    {
        var names = CachePolicy.VaryNames(entry.Stored.Response.Headers);
        var primary = CachePolicy.PrimaryKey(request);
        if (names.Length == 0)
        {
            Set(primary, entry);
            return;
        }
        Set(primary, new CachedVariants(names));
        Set(CachePolicy.VariantKey(request, names), entry);
    }

    private void Set(string key, CacheItem item)
    {
        _memory.Set(key, item);
        _disk?.Set(key, item);
    }

    private void Remove(string key)
    {
        _memory.Remove(key);
        _disk?.Remove(key);
    }

    public async ValueTask DisposeAsync()
    {
        if (_disk is not null)
            await _disk.DisposeAsync();
    }
}
