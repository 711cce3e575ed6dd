using Lb.Rules;
using Microsoft.Extensions.Primitives;
using Yarp.ReverseProxy.Forwarder;

namespace Lb.Host.Forwarding;

/// <summary>
/// Applies the rewrites Rules decided for a forwarded request: the stripped target, X-Forwarded-* and the
/// Cookie header without the persistence cookie on the way in; Location, Content-Location, Set-Cookie and the
/// inserted persistence cookie (with Cache-Control: private) on the way out.
/// </summary>
public sealed class PrefixTransformer : HttpTransformer
{
    // The target Rules produced is sent byte for byte: no second normalisation by System.Uri.
    private static readonly UriCreationOptions VerbatimUri = new() { DangerousDisablePathAndQueryCanonicalization = true };

    private static readonly string[] ClientForwardedHeaders =
        ["X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-Prefix"];

    private static ForwardContext Forward(HttpContext context) => context.Features.Get<ForwardContext>()!;

    public override async ValueTask TransformRequestAsync(HttpContext httpContext, HttpRequestMessage proxyRequest,
        string destinationPrefix, CancellationToken cancellationToken)
    {
        await base.TransformRequestAsync(httpContext, proxyRequest, destinationPrefix, cancellationToken);
        var forward = Forward(httpContext);
        Lb.Host.Logging.RequestTrace.Of(httpContext)?.Sending(proxyRequest);
        proxyRequest.RequestUri = new Uri(BackendUri(destinationPrefix, forward.Plan), VerbatimUri);
        // RFC 9110 §7.6.1: the fields the client named in Connection were for lb alone. Removed before lb adds its
        // own (X-Forwarded-*, Cookie), so a client cannot name those away.
        // As received (Serving/RequestHeadScanner): Kestrel hands the app `close` alone for `Connection: close, X-Hop`
        // and for `X-Hop` + `close` on two lines (seen on .NET 10 when `keep-alive` is not among the options).
        if (Lb.Host.Serving.ReceivedConnection.Of(httpContext) is { Length: > 0 } connection)
            RemoveListed(proxyRequest, connection);
        // Expect: 100-continue is lb's to answer, as HAProxy does (http_handle_expect_hdr sends 100 and removes the
        // header): Kestrel sends the client its 100 Continue when the body is first read, which the forwarder does
        // at once. Forwarded, it made HttpClient wait Expect100ContinueTimeout (1 s) for a 100 from the backend.
        proxyRequest.Headers.Remove("Expect");
        foreach (var name in ClientForwardedHeaders)
            proxyRequest.Headers.Remove(name);
        foreach (var (name, value) in forward.Plan.RequestHeaders)
            proxyRequest.Headers.TryAddWithoutValidation(name, value);
        proxyRequest.Headers.Remove("Cookie");
        if (forward.BackendCookies.Length > 0)
            proxyRequest.Headers.TryAddWithoutValidation("Cookie", string.Join("; ", forward.BackendCookies));
        foreach (var edit in forward.Plan.RequestEdits)
            Apply(proxyRequest, edit);
    }

    private static void RemoveListed(HttpRequestMessage request, string[] connection)
    {
        foreach (var name in HopByHop.ConnectionListed(connection))
        {
            request.Headers.Remove(name);
            request.Content?.Headers.Remove(name);
        }
    }

    /// <summary>`http://server` + the backend target, cut from the public target in one concatenation.</summary>
    private static string BackendUri(string destinationPrefix, ForwardPlan plan) =>
        string.Concat(destinationPrefix.AsSpan(), plan.PublicTarget.AsSpan(plan.BackendStart));

    /// <summary>A rule's request header edit; content headers (Content-Type...) live on the content.</summary>
    private static void Apply(HttpRequestMessage request, HeaderEdit edit)
    {
        switch (edit)
        {
            case HeaderEdit.Set set:
                request.Headers.Remove(set.name);
                request.Content?.Headers.Remove(set.name);
                Add(request, set.name, set.value);
                break;
            case HeaderEdit.Add add:
                Add(request, add.name, add.value);
                break;
            case HeaderEdit.Remove remove:
                request.Headers.Remove(remove.name);
                request.Content?.Headers.Remove(remove.name);
                break;
        }
    }

    private static void Add(HttpRequestMessage request, string name, string value)
    {
        if (!request.Headers.TryAddWithoutValidation(name, value))
            request.Content?.Headers.TryAddWithoutValidation(name, value);
    }

    /// <summary>A rule's response header edit, after lb's own rewrites.</summary>
    private static void Apply(IHeaderDictionary headers, HeaderEdit edit)
    {
        switch (edit)
        {
            case HeaderEdit.Set set:
                headers[set.name] = set.value;
                break;
            case HeaderEdit.Add add:
                headers.Append(add.name, add.value);
                break;
            case HeaderEdit.Remove remove:
                headers.Remove(remove.name);
                break;
        }
    }

    public override async ValueTask<bool> TransformResponseAsync(HttpContext httpContext,
        HttpResponseMessage? proxyResponse, CancellationToken cancellationToken)
    {
        if (proxyResponse is not null)
            Lb.Host.Logging.RequestTrace.Of(httpContext)?.HeadersReceived();
        var proceed = await base.TransformResponseAsync(httpContext, proxyResponse, cancellationToken);
        // No response (a failed attempt): nothing to rewrite, and no cookie may pin the client to a server
        // that just failed; lb's own error page carries none either (as HAProxy's).
        if (proxyResponse is null)
            return proceed;
        var forward = Forward(httpContext);
        var response = forward.Plan.Response;
        var headers = httpContext.Response.Headers;
        // RFC 9110 §7.6.1, the other way: what the backend named in Connection was for lb alone. Before lb's own
        // headers (its cookie, Cache-Control: private) are added, so the backend cannot name those away either.
        if (proxyResponse.Headers.NonValidated.TryGetValues("Connection", out var connection))
            foreach (var name in HopByHop.ConnectionListed(connection.ToArray()))
                headers.Remove(name);
        RewriteEach(headers, "Location", value => Rules.Rules.RewriteLocation(response, value));
        RewriteEach(headers, "Content-Location", value => Rules.Rules.RewriteLocation(response, value));
        RewriteEach(headers, "Set-Cookie", value => Rules.Rules.RewriteSetCookie(response.Prefix, value));
        if (forward.InsertCookie)
            InsertPersistenceCookie(httpContext, forward);
        foreach (var edit in forward.Plan.ResponseEdits)
            Apply(headers, edit);
        return proceed;
    }

    /// <summary>HAProxy `cookie NAME insert nocache`: the cookie, and `Cache-Control: private` so no shared cache keeps it.</summary>
    private static void InsertPersistenceCookie(HttpContext context, ForwardContext forward)
    {
        var headers = context.Response.Headers;
        headers.Append("Set-Cookie", forward.PersistenceCookie(context.Request.IsHttps));
        var cacheControl = headers.CacheControl;
        // Nearly always the backend sent none: the merged value is then a constant.
        headers.CacheControl = cacheControl.Count == 0 ? PrivateOnly : Persistence.CacheControlWithPrivate(NonNull(cacheControl));
    }

    private static readonly string PrivateOnly = Persistence.CacheControlWithPrivate([]);

    /// <summary>The values of a header, without null entries.</summary>
    public static string[] NonNull(StringValues values)
    {
        if (values.Count == 0)
            return [];
        var list = new List<string>(values.Count);
        foreach (var value in values)
            if (value is not null)
                list.Add(value);
        return list.ToArray();
    }

    private static void RewriteEach(IHeaderDictionary headers, string name, Func<string, string> rewrite)
    {
        if (!headers.TryGetValue(name, out var values) || values.Count == 0)
            return;
        var rewritten = new string?[values.Count];
        for (var i = 0; i < values.Count; i++)
            rewritten[i] = values[i] is { } value ? rewrite(value) : null;
        headers[name] = new StringValues(rewritten);
    }
}
