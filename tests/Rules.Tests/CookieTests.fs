module Lb.Rules.Tests.CookieTests
