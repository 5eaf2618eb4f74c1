"""Who reads: email subscribers (with their signed unsubscribe links) and the Slack routes
people make with `/alerts`, as stored in the database.
"""
