using Lb.Rules;
using Microsoft.Extensions.Primitives;
using Yarp.ReverseProxy.Forwarder;

namespace Lb.Host.Forwarding;

/// <summary>
/// Applies the request and response rewrites of a <see cref="ForwardPlan"/>: the stripped target and
/// X-Forwarded-* on the way in; Location, Content-Location and Set-Cookie on the way out.
/// </summary>
public sealed class PrefixTransformer : HttpTransformer
{
    public const string PlanKey = "lb.plan";

    // The target Rules produced is sent byte for byte: no second normalisation by System.Uri.
    private static readonly UriCreationOptions VerbatimUri = new() { DangerousDisablePathAndQueryCanonicalization = true };

    private static readonly string[] ClientForwardedHeaders =
        ["X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-Prefix"];

    private static ForwardPlan Plan(HttpContext context) => (ForwardPlan)context.Items[PlanKey]!;

    public override async ValueTask TransformRequestAsync(HttpContext httpContext, HttpRequestMessage proxyRequest,
        string destinationPrefix, CancellationToken cancellationToken)
    {
        await base.TransformRequestAsync(httpContext, proxyRequest, destinationPrefix, cancellationToken);
        var plan = Plan(httpContext);
        proxyRequest.RequestUri = new Uri(destinationPrefix + plan.BackendTarget, VerbatimUri);
        foreach (var name in ClientForwardedHeaders)
            proxyRequest.Headers.Remove(name);
        foreach (var (name, value) in plan.RequestHeaders)
            proxyRequest.Headers.TryAddWithoutValidation(name, value);
    }

    public override async ValueTask<bool> TransformResponseAsync(HttpContext httpContext,
        HttpResponseMessage? proxyResponse, CancellationToken cancellationToken)
    {
        var proceed = await base.TransformResponseAsync(httpContext, proxyResponse, cancellationToken);
        var plan = Plan(httpContext);
        var headers = httpContext.Response.Headers;
        RewriteEach(headers, "Location", value => Rules.Rules.RewriteLocation(plan.Response, value));
        RewriteEach(headers, "Content-Location", value => Rules.Rules.RewriteLocation(plan.Response, value));
        RewriteEach(headers, "Set-Cookie", value => Rules.Rules.RewriteSetCookie(plan.Response.Prefix, value));
        return proceed;
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
