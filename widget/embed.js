// The embed loader arrives with the widget issue.
